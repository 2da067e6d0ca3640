"""The stored rows of a batch: building them, and inserting the events idempotently.

Event ids and idempotency (docs/protocol.md §10, "Client ids and replays").
`bulk_create` does not return generated integer ids, so the insert is
`INSERT … ON CONFLICT DO NOTHING RETURNING id, satellite_id, client_event_id`
(one statement per 500 rows). Every row carries its event's key, unique per
satellite, in `client_event_id` (a client could only collide with a server-made
key by guessing 128 random bits). RETURNING yields exactly the rows this
statement inserted, whatever other writers do at the same time; a key it does
not return already existed (a replay, possibly by a concurrent request) and is
read back by key: that event gets the id it got the first time, counts as
processed, and its effects are not applied again. The RETURNING rows are mapped
by (satellite, key), not by position, since databases do not promise their order.
The SQL writers live in `common.storage`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from app.models import McpServerLog, SatelliteEvent, SatelliteUsageLog
from app.services.common.storage import INSERT_CHUNK_ROWS, DbTimes, encode_json, insert_sql
from app.services.fleet.state import SatelliteState
from app.services.telemetry.model import Event
from app.services.telemetry.values import number, text, when

_EVENT_COLUMNS = ("satellite_id", "team_id", "installation_id", "event_type",
                  "client_event_id", "occurred_at", "data", "created_at")
_EVENT_RETURNING = ' ON CONFLICT DO NOTHING RETURNING "id", "satellite_id", "client_event_id"'
USAGE_COLUMNS = ("satellite_id", "team_id", "installation_id", "tool_name", "server_slug",
                 "duration_ms", "success", "error_message", "occurred_at")
SERVER_LOG_COLUMNS = ("installation_id", "team_id", "satellite_id", "level", "message",
                      "logged_at")


@dataclass(frozen=True, slots=True)
class Batch:
    """One satellite's valid events, written together (possibly with other batches)."""

    state: SatelliteState
    events: Sequence[Event]
    # when the batch arrived (the runtime's clock)
    now: datetime


def prepare_rows(state: SatelliteState, events: Sequence[Event], now: datetime) -> None:
    """Build each event's rows before it queues for a transaction.

    The shared transaction holds the database connection, so the work done
    while it runs is kept to binding these rows and reading what was inserted.
    """
    created_at = DbTimes(SatelliteEvent, "created_at")(now)
    occurred = DbTimes(SatelliteEvent, "occurred_at")
    usage_time = DbTimes(SatelliteUsageLog, "occurred_at")
    log_time = DbTimes(McpServerLog, "logged_at")
    for event in events:
        data = event.data
        installation_id = event.installation.id if event.installation else None
        event.row = (state.id, event.team_id, installation_id, event.type, event.key,
                     occurred(event.occurred_at), encode_json(data), created_at)
        if event.type == "mcp.tool.executed":
            event.usage_row = (
                state.id, event.team_id, installation_id, data["tool_name"][:255],
                text(data.get("server_slug"), 64), number(data.get("duration_ms")),
                data.get("success") is not False, text(data.get("error_message"), None),
                usage_time(event.occurred_at),
            )
        elif event.type == "mcp.server.logs" and installation_id is not None:
            event.log_rows = [
                (installation_id, event.team_id, state.id,
                 text(item.get("level"), 16) or "info", text(item.get("message"), None) or "",
                 log_time(when(item.get("timestamp"), event.occurred_at)))
                for item in data["logs"] if isinstance(item, dict)
            ]


async def insert_events(conn: BaseDBAsyncClient, batches: Sequence[Batch]) -> None:
    """Multi-row INSERT … ON CONFLICT DO NOTHING RETURNING; replays read back by key.

    Keys are unique per satellite, so rows are told apart by (satellite, key).
    """
    unique: dict[tuple[str, str], Event] = {}
    rows: list[tuple[Any, ...]] = []
    for batch in batches:
        satellite_id = batch.state.id
        for event in batch.events:
            identity = (satellite_id, event.key)
            if identity in unique:
                continue  # the same client id twice: a replay of the first
            unique[identity] = event
            rows.append(event.row)
    inserted: dict[tuple[str, str], int] = {}
    for start in range(0, len(rows), INSERT_CHUNK_ROWS):
        chunk = rows[start:start + INSERT_CHUNK_ROWS]
        sql = insert_sql(conn, SatelliteEvent, _EVENT_COLUMNS, len(chunk), _EVENT_RETURNING)
        # execute_query_dict: asyncpg's execute_query drops the RETURNING rows of an INSERT.
        returned = await conn.execute_query_dict(sql, [value for row in chunk for value in row])
        inserted.update(((str(row["satellite_id"]), str(row["client_event_id"])), int(row["id"]))
                        for row in returned)
    existing = await _existing_event_ids(conn, [key for key in unique if key not in inserted])
    for batch in batches:
        for event in batch.events:
            identity = (batch.state.id, event.key)
            if identity in inserted:
                event.id, event.new = inserted[identity], unique[identity] is event
            else:
                event.id, event.new = existing.get(identity), False


async def _existing_event_ids(conn: BaseDBAsyncClient, identities: Sequence[tuple[str, str]]
                              ) -> dict[tuple[str, str], int]:
    """The stored ids of replayed (satellite, key) pairs (rare: one query per satellite)."""
    keys_by_satellite: dict[str, list[str]] = {}
    for satellite_id, key in identities:
        keys_by_satellite.setdefault(satellite_id, []).append(key)
    found: dict[tuple[str, str], int] = {}
    for satellite_id, keys in keys_by_satellite.items():
        for key, pk in await SatelliteEvent.filter(
            satellite_id=satellite_id, client_event_id__in=keys
        ).using_db(conn).values_list("client_event_id", "id"):
            found[(satellite_id, str(key))] = int(pk)
    return found
