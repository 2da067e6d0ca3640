"""What the alert services use besides the fleet's context: the alert engine's memory."""

from __future__ import annotations

from typing import Protocol

from app.services.alerts.state import AlertMemory
from app.services.fleet.context import FleetContext


class AlertsContext(FleetContext, Protocol):
    alerts: AlertMemory
