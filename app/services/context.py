"""The context transports hand to services: every domain's context in one.

REST handlers, GraphQL resolvers, jobs and the CLI hold one object of this shape
(built by `app/runtime.py`) and pass it to any service function.
"""

from __future__ import annotations

from typing import Protocol

from app.services.alerts.context import AlertsContext
from app.services.live.connections import LiveHub
from app.services.people.context import PeopleContext


class Services(PeopleContext, AlertsContext, Protocol):
    # Open subscriptions and SSE streams, by session (ended on logout, shutdown).
    live: LiveHub
    # time.monotonic() when the shutdown timeout ends (0.0 until shutdown begins)
    shutdown_deadline: float
    # Names this process in its start-up and shutdown log lines (several instances).
    instance_id: str
