"""Per-event validation (docs/protocol.md §10, "Per-event validation").

Each event is checked on its own, so a bad event is a failure entry
(`Invalid`), never a 400 for the batch: the envelope; the type (a known one, or
any other of the well-formed `EVENT_TYPE_PATTERN`, kept without further checks);
for a known type, the required `data` keys (and one of its forms), and the JSON
type of every key the tables of `app.wire.events` name. Enumerated values
outside the documented sets are kept as sent.

Cost. Envelopes of the plain shape the reference client sends skip the pydantic
model (`_plain_envelope`); the key checks of a type are built once (`_CHECKS`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

import pydantic

from app.services.telemetry.model import Event, Invalid
from app.wire.events import (
    DATA_FORMS,
    DATA_KINDS,
    EVENT_TYPE_PATTERN,
    MAX_CLIENT_ID_LENGTH,
    MAX_TYPE_LENGTH,
    NOT_NULL_DATA,
    OPTIONAL_DATA,
    REQUIRED_DATA,
    DataKind,
    EventIn,
    data_form,
)

MAX_ID_LENGTH = 255
_ID_FIELDS = ("installation_id", "server_id", "team_id")
_TYPE_FORM = re.compile(EVENT_TYPE_PATTERN)
# The Python types JSON decoding gives for each kind (compared exactly: bool is no number),
# and the further check of the kinds that need one.
_JSON_TYPES: dict[DataKind, frozenset[type]] = {
    DataKind.STRING: frozenset({str}), DataKind.ID: frozenset({str}),
    DataKind.NUMBER: frozenset({int, float}), DataKind.BOOLEAN: frozenset({bool}),
    DataKind.ARRAY: frozenset({list}), DataKind.NAMES: frozenset({list}),
}
_CONTENT_CHECKS: dict[DataKind, Callable[[Any], bool]] = {
    DataKind.ID: lambda value: len(value) <= MAX_ID_LENGTH,
    DataKind.NAMES: lambda value: all(type(item) is str for item in value),
}
_NEVER_NULL = frozenset({DataKind.ARRAY, DataKind.NAMES})

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
    data = event.data
    plan = _PLANS.get(event.type)
    if plan is None:
        if not _TYPE_FORM.fullmatch(event.type):
            raise Invalid(f"Invalid event type: {event.type} (expected dotted lower-case "
                          "words, e.g. mcp.server.started)")
    else:
        if plan.forms is None:
            if not data.keys() >= plan.required:
                _missing(plan, data, ())
            checks = plan.checks[None]
        else:
            form = data_form(event.type, data)
            if form is None or not data.keys() >= plan.required:
                _missing(plan, data, plan.forms if form is None else ())
            checks = plan.checks[form]
        for name, types, content, error in checks:
            value = data.get(name)  # None: null, or an optional key left out
            if type(value) not in types or (
                    content is not None and value is not None and not content(value)):
                raise Invalid(error)
    for name in _ID_FIELDS:
        value = data.get(name)
        if value is not None and (type(value) is not str or len(value) > MAX_ID_LENGTH):
            raise Invalid(f"Invalid event: data.{name} must be a string or null")
    occurred_at = event.timestamp
    if occurred_at.tzinfo is None:
        occurred_at = occurred_at.replace(tzinfo=UTC)
    key = event.id if event.id is not None else f"{nonce}.{index}"
    return Event(index, event.type, occurred_at, data, key, event.id)


def _missing(plan: _Plan, data: dict[str, Any], forms: tuple[tuple[str, ...], ...]) -> NoReturn:
    missing = [name for name in plan.names if name not in data]
    if forms:  # "[installation_id, tools] or [server_id, tool_names]"
        missing.append(" or ".join(
            "[" + ", ".join(name for name in keys if name not in data) + "]" for keys in forms))
    raise Invalid(f"Missing required data field(s): {', '.join(missing)}")


# (key, accepted Python types (with None when null is accepted), further check, failure)
_Check = tuple[str, frozenset[type], Callable[[Any], bool] | None, str]


@dataclass(frozen=True, slots=True)
class _Plan:
    """How to check a known type, built once."""

    names: tuple[str, ...]  # the required keys, in the table's order
    required: frozenset[str]
    forms: tuple[tuple[str, ...], ...] | None
    checks: dict[tuple[str, ...] | None, tuple[_Check, ...]]  # per form (None: no forms)


def _checks(event_type: str, form: tuple[str, ...] | None) -> tuple[_Check, ...]:
    """The checks of the keys the tables name for a known type (and its form)."""
    required = (*REQUIRED_DATA[event_type], *(form or ()))
    not_null = NOT_NULL_DATA.get(event_type, ())
    checks = []
    for name in dict.fromkeys((*required, *OPTIONAL_DATA.get(event_type, ()))):
        kind = DATA_KINDS.get(name)
        if kind is None:
            continue
        nullable = name not in not_null and not (name in required and kind in _NEVER_NULL)
        types = _JSON_TYPES[kind] | ({type(None)} if nullable else set())
        error = f"Invalid event: data.{name} must be {kind}{' or null' if nullable else ''}"
        checks.append((name, types, _CONTENT_CHECKS.get(kind), error))
    return tuple(checks)


def _plan(event_type: str) -> _Plan:
    forms = DATA_FORMS.get(event_type)
    return _Plan(REQUIRED_DATA[event_type], frozenset(REQUIRED_DATA[event_type]), forms,
                 {form: _checks(event_type, form) for form in forms or (None,)})


_PLANS = {event_type: _plan(event_type) for event_type in REQUIRED_DATA}


def type_of(raw: Any) -> str | None:
    """The type a raw event names, for its failure entry (None when it names none)."""
    if isinstance(raw, dict) and isinstance(raw.get("type"), str):
        return str(raw["type"])[:64]
    return None
