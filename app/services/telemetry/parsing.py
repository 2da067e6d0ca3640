"""Per-event validation (docs/protocol.md §10, "Per-event validation").

Each event is checked on its own (envelope, type, required `data` keys of
`REQUIRED_DATA`, the few values an effect needs); a bad or unknown event is a
failure entry (`Invalid`), never a 400 for the batch.

Cost. Envelopes of the plain shape the reference client sends skip the pydantic
model (`_plain_envelope`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pydantic

from app.services.telemetry.model import Event, Invalid
from app.wire.events import MAX_CLIENT_ID_LENGTH, MAX_TYPE_LENGTH, REQUIRED_DATA, EventIn

INSTALLATION_STATUSES = frozenset({
    "provisioning", "command_received", "connecting", "discovering_tools", "syncing_tools",
    "online", "restarting", "offline", "error", "requires_reauth", "permanently_failed",
})
MAX_ID_LENGTH = 255
_LIST_FIELDS = {
    "mcp.tools.discovered": "tools", "mcp.server.logs": "logs", "mcp.request.logs": "requests",
}
_ID_FIELDS = ("installation_id", "server_id", "team_id")

# RFC 3339 date-times the reference client sends ("2026-01-02T03:04:05.678Z"): for
# these `datetime.fromisoformat` and pydantic agree, so the pydantic model (the
# costly part of checking an event) is only needed for the other shapes.
_PLAIN_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"  # date and time
    r"(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})?"  # fraction, offset
)


@dataclass(frozen=True, slots=True)
class _Envelope:
    type: str
    timestamp: datetime
    data: dict[str, Any]
    id: str | None


def _plain_envelope(raw: dict[str, Any]) -> _Envelope | None:
    """The envelope when it has the plain shape `EventIn` accepts as is, else None.

    None means "ask `EventIn`", which also words the error of a bad envelope.
    """
    kind, timestamp, data, client_id = (raw.get("type"), raw.get("timestamp"),
                                        raw.get("data"), raw.get("id"))
    if not (type(kind) is str and 0 < len(kind) <= MAX_TYPE_LENGTH and type(data) is dict
            and type(timestamp) is str and _PLAIN_TIMESTAMP.fullmatch(timestamp)):
        return None
    if client_id is not None and not (type(client_id) is str
                                      and 0 < len(client_id) <= MAX_CLIENT_ID_LENGTH):
        return None
    try:
        occurred_at = datetime.fromisoformat(timestamp)
    except ValueError:  # e.g. month 13: pydantic words the error
        return None
    return _Envelope(kind, occurred_at, data, client_id)


def _envelope(raw: Any) -> _Envelope | EventIn:
    if not isinstance(raw, dict):
        raise Invalid("Invalid event: must be an object")
    plain = _plain_envelope(raw)
    if plain is not None:
        return plain
    try:
        return EventIn.model_validate(raw)
    except pydantic.ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "event"
        raise Invalid(f"Invalid event: {where}: {first['msg']}") from error


def parse(index: int, raw: Any, nonce: str) -> Event:
    """The event, or `Invalid`; without a client id its key is `nonce` + index."""
    event = _envelope(raw)
    required = REQUIRED_DATA.get(event.type)
    if required is None:
        raise Invalid(f"Unknown event type: {event.type}")
    missing = [name for name in required if name not in event.data]
    if missing:
        raise Invalid(f"Missing required data field(s): {', '.join(missing)}")
    data = event.data
    for name in _ID_FIELDS:
        value = data.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > MAX_ID_LENGTH):
            raise Invalid(f"Invalid event: data.{name} must be a string or null")
    if event.type == "mcp.server.status_changed" and data["status"] not in INSTALLATION_STATUSES:
        raise Invalid(f"Invalid event: data.status must be one of "
                      f"{', '.join(sorted(INSTALLATION_STATUSES))}")
    if event.type == "mcp.tool.executed" and not isinstance(data["tool_name"], str):
        raise Invalid("Invalid event: data.tool_name must be a string")
    list_field = _LIST_FIELDS.get(event.type)
    if list_field is not None and not isinstance(data[list_field], list):
        raise Invalid(f"Invalid event: data.{list_field} must be an array")
    occurred_at = event.timestamp
    if occurred_at.tzinfo is None:
        occurred_at = occurred_at.replace(tzinfo=UTC)
    key = event.id if event.id is not None else f"{nonce}.{index}"
    return Event(index, event.type, occurred_at, data, key, event.id)


def type_of(raw: Any) -> str | None:
    """The type a raw event names, for its failure entry (None when it names none)."""
    if isinstance(raw, dict) and isinstance(raw.get("type"), str):
        return str(raw["type"])[:64]
    return None
