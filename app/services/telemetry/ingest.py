"""Event ingestion (docs/protocol.md §10): batches of up to 100 events, partial success.

The steps, each in its own module: `parsing` (each event on its own: a bad
event is a failure entry), `attribution`, `redaction`, `rows` (building and
inserting, idempotent by key), `effects`. This module runs them in order and
owns the write and the publishing:
- the valid events are written in ONE transaction that starts with a write, with
  one bulk insert; batches that arrive while another transaction runs share the
  next one (`common.storage.GroupCommit`: on SQLite every transaction holds the
  one connection, so per-batch transactions queue behind each other's round
  trips); if a shared transaction fails, each batch is retried in its own, and if
  a batch's own transaction fails, each of its events in its own, so one bad
  event never fails the others;
- every newly stored event is published on `satellite.events` after the commit;
- a well-formed type this server does not know is stored and published like any
  other, with no further effect; it is counted by type
  (`groundstation_unknown_events_total`, bounded labels) and logged at warning
  level the first time it is seen, not per event.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tortoise.transactions import in_transaction

from app.bus import Channels
from app.db import DATABASE_ERRORS
from app.models.ids import new_id
from app.services.common.clock import iso
from app.services.common.storage import GroupCommit, group_commit
from app.services.fleet.state import SatelliteState
from app.services.telemetry.attribution import (
    attribute,
    drop_outside_users,
    existing_teams,
    lookup,
)
from app.services.telemetry.effects import apply_effects
from app.services.telemetry.model import (
    SERVER_KEY_PREFIX,
    Event,
    EventFailure,
    IngestResult,
    Invalid,
)
from app.services.telemetry.parsing import parse, type_of
from app.services.telemetry.redaction import redact_request_logs
from app.services.telemetry.rows import Batch, insert_events, prepare_rows
from app.services.telemetry.states import PROCESS_TYPES
from app.wire.events import REQUIRED_DATA

if TYPE_CHECKING:
    from app.services.fleet.context import FleetContext

log = logging.getLogger(__name__)

_RETRYABLE: tuple[type[BaseException], ...] = (*DATABASE_ERRORS, ValueError, TypeError)


async def _write_batches(batches: list[Batch]) -> None:
    """The batches' events and effects in ONE transaction that starts with a write."""
    now = max(batch.now for batch in batches)
    async with in_transaction() as conn:
        await insert_events(conn, batches)
        await apply_effects(conn, batches, now)


def _writer() -> GroupCommit[Batch]:
    return group_commit("events", lambda: GroupCommit(_write_batches, _RETRYABLE))


async def ingest_events(rt: FleetContext, state: SatelliteState, raw_events: Sequence[Any]
                        ) -> IngestResult:
    """Validate, attribute, store and publish one batch; see the module docstring."""
    failures: list[EventFailure] = []
    parsed: list[Event] = []
    nonce = SERVER_KEY_PREFIX + new_id()
    for index, raw in enumerate(raw_events):
        try:
            parsed.append(parse(index, raw, nonce))
        except Invalid as error:
            failures.append(EventFailure(index, type_of(raw), str(error)))
    valid: list[Event] = []
    if parsed:
        found = await lookup(state, parsed)
        claims: list[Event] = []
        for event in parsed:
            try:
                (claims if attribute(state, event, found) else valid).append(event)
            except Invalid as error:
                failures.append(EventFailure(event.index, event.type, str(error)))
        if claims:
            teams = await existing_teams({str(event.team_id) for event in claims})
            for event in claims:
                if event.team_id in teams:
                    valid.append(event)
                else:
                    failures.append(EventFailure(event.index, event.type,
                                                 f"Unknown team: {event.team_id}"))
            valid.sort(key=lambda event: event.index)
    await drop_outside_users(valid)
    await redact_request_logs(valid)
    stored = []
    for event in await _store_all(state, valid, failures, rt.clock.now()):
        if event.id is None:  # a replayed key removed meanwhile (retention): nothing to ack
            failures.append(EventFailure(event.index, event.type, "Event could not be stored"))
        else:
            stored.append(event)
    failures.sort(key=lambda failure: failure.index)
    stored.sort(key=lambda event: event.index)
    fresh = [event for event in stored if event.new]
    if any(event.type in PROCESS_TYPES for event in fresh):
        rt.heartbeats.processes.forget(state.id)  # its process rows changed
    await _publish(rt, state, fresh)
    if fresh:
        rt.metrics.events.labels(outcome="accepted").inc(len(fresh))
    if len(stored) > len(fresh):
        rt.metrics.events.labels(outcome="replayed").inc(len(stored) - len(fresh))
    if failures:
        rt.metrics.events.labels(outcome="failed").inc(len(failures))
    _count_unknown(rt, state, fresh)
    return IngestResult([str(event.id) for event in stored], failures)


def _count_unknown(rt: FleetContext, state: SatelliteState, fresh: Sequence[Event]) -> None:
    """Count the new events of unknown types; log each such type the first time."""
    unknown: dict[str, int] = {}
    for event in fresh:
        if event.type not in REQUIRED_DATA:
            unknown[event.type] = unknown.get(event.type, 0) + 1
    for event_type, amount in unknown.items():
        if rt.metrics.count_unknown_events(event_type, amount):
            log.warning("unknown event type", extra={
                "op": "events", "satellite_id": state.id, "type": event_type})


async def _publish(rt: FleetContext, state: SatelliteState, fresh: Sequence[Event]) -> None:
    """One message per new event on `satellite.events` (after the commit), published
    together (one Redis message for the batch when the bus is networked)."""
    stamps: dict[datetime, str | None] = {}  # events of a batch often share a timestamp
    messages: list[dict[str, Any]] = []
    for event in fresh:
        stamp = stamps.get(event.occurred_at)
        if stamp is None:
            stamp = stamps[event.occurred_at] = iso(event.occurred_at)
        messages.append({
            "id": str(event.id), "satellite_id": state.id, "team_id": event.team_id,
            "type": event.type, "timestamp": stamp, "data": event.data,
        })
    await rt.bus.publish_many(Channels.SATELLITE_EVENTS, messages)


async def _store_all(state: SatelliteState, valid: list[Event],
                     failures: list[EventFailure], now: datetime) -> list[Event]:
    """The whole batch in one transaction (shared with concurrent batches); on failure,
    each event in its own."""
    if not valid:
        return []
    prepare_rows(state, valid, now)
    try:
        await _writer().write(Batch(state, valid, now))
        return valid
    except _RETRYABLE:
        log.warning("event batch write failed; retrying event by event", exc_info=True,
                    extra={"op": "events", "satellite_id": state.id, "events": len(valid)})
    stored: list[Event] = []
    for event in valid:
        event.id, event.new = None, False
        try:
            await _write_batches([Batch(state, [event], now)])
        except _RETRYABLE:
            log.warning("event could not be stored", exc_info=True, extra={
                "op": "events", "satellite_id": state.id, "type": event.type})
            failures.append(EventFailure(event.index, event.type, "Event could not be stored"))
            continue
        stored.append(event)
    return stored


__all__ = ["ingest_events"]
