"""Payloads of the live subscriptions (docs/graphql.md §3)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.schema.enums import SatelliteStatus
from app.schema.types.satellites import Satellite


@strawberry.type
class SatelliteStatusChange:
    """A satellite's admin status or `online` changed; `satellite` shows the new state."""

    satellite: Satellite
    online: bool
    previous_status: SatelliteStatus
    at: datetime


__all__ = ["SatelliteStatusChange"]
