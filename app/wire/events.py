"""The event batch body and the event types (docs/protocol.md §10).

The batch model checks only the envelope: `events` is a list of 1–100 items.
Each item stays a raw value here and is validated on its own by the service
(`EventIn`, then the tables below), so one bad event becomes a failure entry
instead of a 400 for the whole batch.

The tables: per known type, the `data` keys that must be present
(`REQUIRED_DATA`; "present" means null is accepted, except for `NOT_NULL_DATA`),
the optional keys the server reads (`OPTIONAL_DATA`), the alternative forms of
a type (`DATA_FORMS`: the first form whose keys are all present is the event's),
and the JSON type of every key named (`DATA_KINDS`). Any other well-formed type
(`EVENT_TYPE_PATTERN`) is kept without checks beyond the envelope.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field, StrictStr

from app.wire.base import WireModel

MIN_EVENTS = 1
MAX_EVENTS = 100
MAX_TYPE_LENGTH = 64
MAX_CLIENT_ID_LENGTH = 100

# Dotted lower-case words ("mcp.server.paused"): the form of every type, known or not.
EVENT_TYPE_PATTERN = r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+"

_SERVER = ("server_id", "server_slug", "team_id")

# Required `data` keys per type ("required" = the key is present; null is accepted).
REQUIRED_DATA: dict[str, tuple[str, ...]] = {
    "mcp.client.connected": ("session_id", "team_id", "transport"),
    "mcp.client.disconnected": ("session_id", "team_id"),
    "mcp.client.activity": ("team_id", "request_count", "tool_call_count", "last_activity_at"),
    "mcp.tool.executed": ("tool_name", "server_id", "team_id", "duration_ms", "success"),
    "mcp.server.started": (*_SERVER, "process_id", "transport", "tool_count",
                           "spawn_duration_ms"),
    "mcp.server.crashed": (*_SERVER, "process_id", "exit_code", "signal", "uptime_seconds",
                           "crash_count", "will_restart"),
    "mcp.server.restarted": (*_SERVER, "old_process_id", "new_process_id", "restart_reason",
                             "attempt_number"),
    "mcp.server.stopped": ("server_id", "team_id", "reason"),
    "mcp.server.permanently_failed": (*_SERVER, "total_crashes", "last_error", "failed_at"),
    "mcp.server.dormant": (*_SERVER, "process_id", "idle_duration_seconds",
                           "last_activity_at"),
    "mcp.server.respawned": (*_SERVER, "process_id", "dormant_duration_seconds",
                             "respawn_duration_ms"),
    # + one of the DATA_FORMS
    "mcp.tools.discovered": ("team_id", "server_slug", "tool_count"),
    "mcp.tools.updated": (*_SERVER, "added_tools", "removed_tools", "total_tools"),
    "config.refreshed": ("config_hash", "server_count", "change_detected"),
    "config.error": ("error_type", "error_message"),
    "security.auth.failed": ("reason",),
    "resource.limit.exceeded": ("team_id", "resource_type", "current_value", "limit_value"),
    "mcp.server.status_changed": ("installation_id", "team_id", "status", "timestamp"),
    "mcp.server.logs": ("installation_id", "team_id", "logs"),
    "mcp.request.logs": ("installation_id", "team_id", "requests"),
}

# Alternative sets of further required keys: the backend form first, then the satellite's.
DATA_FORMS: dict[str, tuple[tuple[str, ...], ...]] = {
    "mcp.tools.discovered": (("installation_id", "tools"), ("server_id", "tool_names")),
}

# Optional keys the server reads (their JSON type is checked when they are present).
OPTIONAL_DATA: dict[str, tuple[str, ...]] = {
    "mcp.client.connected": ("client_type", "user_agent", "ip_address"),
    "mcp.client.disconnected": ("connection_duration_seconds", "tool_execution_count",
                                "disconnect_reason"),
    "mcp.client.activity": ("user_id", "oauth_client_id", "client_name", "user_agent",
                            "ip_address", "session_id"),
    "mcp.tool.executed": ("server_slug", "error_message"),
    "mcp.server.stopped": ("server_slug", "server_name"),
    "mcp.tools.discovered": ("discovery_duration_ms", "previous_tool_count"),
    "config.refreshed": ("teams_count", "fetch_duration_ms"),
    "config.error": ("status_code", "retry_in"),
    "security.auth.failed": ("team_id", "client_id", "ip_address"),
    "mcp.server.status_changed": ("user_id", "status_message"),
}

# Keys a type needs a value for (null fails like a wrong type).
NOT_NULL_DATA: dict[str, tuple[str, ...]] = {
    "mcp.client.connected": ("session_id",),
    "mcp.client.disconnected": ("session_id",),
    "mcp.tool.executed": ("tool_name",),
    "mcp.server.status_changed": ("status",),
    "resource.limit.exceeded": ("resource_type",),
}


class DataKind(StrEnum):
    """A JSON type, worded for the failure message ("must be …")."""

    STRING = "a string"
    ID = "a string of at most 255 characters"
    NUMBER = "a number"
    BOOLEAN = "a boolean"
    ARRAY = "an array"  # never null
    NAMES = "an array of strings"  # never null


# The JSON type of each key the tables name. `installation_id`, `server_id` and
# `team_id` are checked for every type, known or not (strings of at most 255 characters).
DATA_KINDS: dict[str, DataKind] = {
    **dict.fromkeys((
        "client_type", "transport", "user_agent", "ip_address", "disconnect_reason", "user_id",
        "oauth_client_id", "client_name", "last_activity_at", "tool_name", "error_message",
        "server_slug", "server_name", "signal", "restart_reason", "reason", "last_error",
        "failed_at", "config_hash", "error_type", "client_id", "resource_type", "status",
        "status_message", "timestamp",
    ), DataKind.STRING),
    "session_id": DataKind.ID,
    **dict.fromkeys((
        "request_count", "tool_call_count", "duration_ms", "process_id", "tool_count",
        "spawn_duration_ms", "exit_code", "uptime_seconds", "crash_count", "old_process_id",
        "new_process_id", "attempt_number", "total_crashes", "idle_duration_seconds",
        "dormant_duration_seconds", "respawn_duration_ms", "discovery_duration_ms",
        "previous_tool_count", "total_tools", "server_count", "teams_count", "fetch_duration_ms",
        "status_code", "retry_in", "current_value", "limit_value", "connection_duration_seconds",
        "tool_execution_count",
    ), DataKind.NUMBER),
    **dict.fromkeys(("success", "will_restart", "change_detected"), DataKind.BOOLEAN),
    **dict.fromkeys(("tools", "logs", "requests"), DataKind.ARRAY),
    **dict.fromkeys(("tool_names", "added_tools", "removed_tools"), DataKind.NAMES),
}


def data_form(event_type: str, data: dict[str, Any]) -> tuple[str, ...] | None:
    """The keys of the first of the type's `DATA_FORMS` that `data` has whole (None: none)."""
    for form in DATA_FORMS.get(event_type, ()):
        if all(name in data for name in form):
            return form
    return None


class EventsBatch(WireModel):
    """The envelope only: each event is checked separately (see the module docstring)."""

    events: list[Any] = Field(min_length=MIN_EVENTS, max_length=MAX_EVENTS)


class EventIn(WireModel):
    """One event's own fields; `data` keys are checked against `REQUIRED_DATA`."""

    type: StrictStr = Field(min_length=1, max_length=MAX_TYPE_LENGTH)
    timestamp: datetime
    data: dict[str, Any]
    id: StrictStr | None = Field(default=None, min_length=1, max_length=MAX_CLIENT_ID_LENGTH)


__all__ = ["DATA_FORMS", "DATA_KINDS", "EVENT_TYPE_PATTERN", "MAX_CLIENT_ID_LENGTH",
           "MAX_EVENTS", "MAX_TYPE_LENGTH", "NOT_NULL_DATA", "OPTIONAL_DATA", "REQUIRED_DATA",
           "DataKind", "EventIn", "EventsBatch", "data_form"]
