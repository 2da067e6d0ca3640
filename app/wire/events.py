"""The event batch body (docs/protocol.md §10).

The batch model checks only the envelope: `events` is a list of 1–100 items.
Each item stays a raw value here and is validated on its own by the service
(`EventIn` plus the required `data` fields of `REQUIRED_DATA`), so one bad
event becomes a failure entry instead of a 400 for the whole batch.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, StrictStr

from app.wire.base import WireModel

MIN_EVENTS = 1
MAX_EVENTS = 100
MAX_TYPE_LENGTH = 64
MAX_CLIENT_ID_LENGTH = 100

# Required `data` keys per type ("required" = the key is present; null is accepted).
REQUIRED_DATA: dict[str, tuple[str, ...]] = {
    "mcp.server.started": ("server_id", "server_slug", "team_id", "process_id", "transport",
                           "tool_count", "spawn_duration_ms"),
    "mcp.server.crashed": ("server_id", "server_slug", "team_id", "process_id", "exit_code",
                           "signal", "uptime_seconds", "crash_count", "will_restart"),
    "mcp.server.restarted": ("server_id", "server_slug", "team_id", "old_process_id",
                             "new_process_id", "restart_reason", "attempt_number"),
    "mcp.server.dormant": ("server_id", "server_slug", "team_id", "process_id",
                           "idle_duration_seconds", "last_activity_at"),
    "mcp.server.respawned": ("server_id", "server_slug", "team_id", "process_id",
                             "dormant_duration_seconds", "respawn_duration_ms"),
    "mcp.server.status_changed": ("installation_id", "team_id", "status", "timestamp"),
    "mcp.tool.executed": ("tool_name", "server_id", "team_id", "duration_ms", "success"),
    "mcp.tools.discovered": ("installation_id", "team_id", "server_slug", "tool_count", "tools"),
    "mcp.server.logs": ("installation_id", "team_id", "logs"),
    "mcp.request.logs": ("installation_id", "team_id", "requests"),
    "mcp.client.activity": ("team_id", "request_count", "tool_call_count", "last_activity_at"),
}


class EventsBatch(WireModel):
    """The envelope only: each event is checked separately (see the module docstring)."""

    events: list[Any] = Field(min_length=MIN_EVENTS, max_length=MAX_EVENTS)


class EventIn(WireModel):
    """One event's own fields; `data` keys are checked against `REQUIRED_DATA`."""

    type: StrictStr = Field(min_length=1, max_length=MAX_TYPE_LENGTH)
    timestamp: datetime
    data: dict[str, Any]
    id: StrictStr | None = Field(default=None, min_length=1, max_length=MAX_CLIENT_ID_LENGTH)


__all__ = ["MAX_CLIENT_ID_LENGTH", "MAX_EVENTS", "MAX_TYPE_LENGTH", "REQUIRED_DATA", "EventIn",
           "EventsBatch"]
