"""Event ingestion (protocol.md §10): batches of up to 100 events, partial success.

Rules:
- each event is validated on its own (envelope, type, required `data` keys of
  `REQUIRED_DATA`, the few values an effect needs); a bad or unknown event is a
  failure entry, never a 400 for the batch; unknown types are logged at warning;
- its team is the team of the installation or process it names (`installation_id`,
  or `server_id` matched against the satellite's process ids, then installation
  ids, then the installation id closing a config key); when it names none known,
  its `team_id`, which a team satellite may only set to its own team (null means
  the satellite's team); a `team_id` that disagrees with the named installation,
  an installation of another team (team satellite) or pinned to another
  satellite is a failure for that event;
- installations and teams are read through a short in-process cache
  (`LOOKUP_CACHE_SECONDS`, misses included): an installation or team created,
  changed or removed by another process (the CLI) is seen by event attribution
  at most that many seconds later; a claimed `team_id` is only looked up when
  the event names no known installation (one query for the batch, if any);
- the valid events are written in ONE transaction that starts with a write, with
  one bulk insert; batches that arrive while another transaction runs share the
  next one (`event_store.GroupCommit`: on SQLite every transaction holds the one
  connection, so per-batch transactions queue behind each other's round trips);
  if a shared transaction fails, each batch is retried in its own, and if a
  batch's own transaction fails, each of its events in its own, so one bad
  event never fails the others;
- effects per type: process rows, installation status (one UPDATE per
  installation per transaction: the last status wins, as applying them in
  order would leave it), usage log, tool
  catalogue (replaced), server logs (bounded per installation), request logs
  (secret-looking `tool_params` redacted), client activity counters;
- every newly stored event is published on `satellite.events` after the commit.

Event ids and idempotency. `bulk_create` does not return generated integer ids,
so the insert is `INSERT … ON CONFLICT DO NOTHING RETURNING id, satellite_id,
client_event_id` (one statement per 500 rows). Every row carries a key unique per
satellite in `client_event_id`: the client's `id` when it sent one, otherwise a
server-generated `~<32 hex>.<index>` key, one random nonce per batch plus the
event's index (a client could only collide with it by guessing 128 random
bits). RETURNING yields exactly the rows this statement inserted, whatever
other writers do at the same time; a key it does not return already existed
(a replay, possibly by a concurrent request) and is read back by key: that
event gets the id it got the first time, counts as processed, and its effects
are not applied again. The RETURNING rows are mapped by (satellite, key), not by
position, since databases do not promise their order.

Cost. Envelopes of the plain shape the reference client sends skip the pydantic
model (`_plain_envelope`); the SQL writers live in `event_store`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import pydantic
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from app.bus import Channels
from app.db import DATABASE_ERRORS
from app.models import (
    McpClientActivity,
    McpInstallation,
    McpRequestLog,
    McpServer,
    McpServerLog,
    McpTool,
    SatelliteEvent,
    SatelliteProcess,
    SatelliteUsageLog,
    Team,
)
from app.models.enums import HealthStatus, ProcessStatus
from app.models.ids import ID_LENGTH, new_id
from app.services.common.clock import iso
from app.services.common.storage import (
    INSERT_CHUNK_ROWS,
    DbTimes,
    GroupCommit,
    encode_json,
    group_commit,
    insert_rows,
    insert_sql,
    marks,
)
from app.services.fleet.processes import installation_id_in
from app.services.fleet.state import SatelliteState
from app.wire.events import MAX_CLIENT_ID_LENGTH, MAX_TYPE_LENGTH, REQUIRED_DATA, EventIn

if TYPE_CHECKING:
    from app.services.fleet.context import FleetContext

log = logging.getLogger(__name__)

INSTALLATION_STATUSES = frozenset({
    "provisioning", "command_received", "connecting", "discovering_tools", "syncing_tools",
    "online", "restarting", "offline", "error", "requires_reauth", "permanently_failed",
})
MAX_SERVER_LOGS_PER_INSTALLATION = 1000
# How long a looked-up installation or team (or its absence) is reused (see the docstring).
LOOKUP_CACHE_SECONDS = 2.0
_LOOKUP_CACHE_LIMIT = 20_000
MAX_ID_LENGTH = 255
SERVER_KEY_PREFIX = "~"
REDACTED = "[REDACTED]"
# Normalised (lower case, no "_"/"-") fragments that make a tool_params key secret.
_SECRET_FRAGMENTS = ("authorization", "token", "password", "secret", "apikey")
_SCHEMA_FIELDS = tuple(
    f"{tier}_{kind}_schema"
    for tier in ("team", "user") for kind in ("args", "env", "headers", "url_query_params")
)
_PROCESS_TYPES = frozenset({
    "mcp.server.started", "mcp.server.crashed", "mcp.server.restarted",
    "mcp.server.dormant", "mcp.server.respawned",
})
_LIST_FIELDS = {
    "mcp.tools.discovered": "tools", "mcp.server.logs": "logs", "mcp.request.logs": "requests",
}
_ID_FIELDS = ("installation_id", "server_id", "team_id")


@dataclass(frozen=True, slots=True)
class EventFailure:
    index: int
    type: str | None
    error: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "type": self.type, "error": self.error}


@dataclass(frozen=True, slots=True)
class IngestResult:
    event_ids: list[str]
    failures: list[EventFailure]

    @property
    def processed(self) -> int:
        return len(self.event_ids)


@dataclass(frozen=True, slots=True)
class _Installation:
    id: str
    team_id: str
    pinned_satellite_id: str | None
    server_id: str


@dataclass(slots=True)
class _Event:
    index: int
    type: str
    occurred_at: datetime
    data: dict[str, Any]
    key: str
    client_id: str | None
    installation: _Installation | None = None
    process_id: str | None = None  # the satellite's process row it names, if any
    team_id: str | None = None
    id: int | None = None
    new: bool = False
    # Built by `_prepare_rows` before the write queues: in _EVENT_COLUMNS order, and
    # its bulk effect rows (_USAGE_COLUMNS, _SERVER_LOG_COLUMNS), applied if it is new.
    row: tuple[Any, ...] = ()
    usage_row: tuple[Any, ...] | None = None
    log_rows: list[tuple[Any, ...]] = field(default_factory=list)


_V = TypeVar("_V")


@dataclass(slots=True)
class _Lookup:
    processes: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    installations: dict[str, _Installation] = field(default_factory=dict)


class _TtlCache(Generic[_V]):
    """Values (or their absence, `None`) by id, each reused for `LOOKUP_CACHE_SECONDS`."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, _V | None]] = {}

    def split(self, keys: Iterable[str]) -> tuple[dict[str, _V | None], set[str]]:
        """(the fresh cached entries, the keys to look up)."""
        now = time.monotonic()
        cached: dict[str, _V | None] = {}
        missing: set[str] = set()
        for key in keys:
            entry = self._entries.get(key)
            if entry is not None and entry[0] > now:
                cached[key] = entry[1]
            else:
                missing.add(key)
        return cached, missing

    def store(self, keys: Iterable[str], found: dict[str, _V]) -> None:
        if len(self._entries) > _LOOKUP_CACHE_LIMIT:
            self._entries.clear()  # bounded: ids come from clients
        expires = time.monotonic() + LOOKUP_CACHE_SECONDS
        for key in keys:
            self._entries[key] = (expires, found.get(key))

    def clear(self) -> None:
        self._entries.clear()


_installations: _TtlCache[_Installation] = _TtlCache()
_teams: _TtlCache[bool] = _TtlCache()


def clear_lookup_cache() -> None:
    """Forget cached installations and teams (the next batch reads them again)."""
    _installations.clear()
    _teams.clear()


class _Invalid(Exception):
    """One event refused; the message is its failure entry."""


# ---- validation ---------------------------------------------------------------
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
        raise _Invalid("Invalid event: must be an object")
    plain = _plain_envelope(raw)
    if plain is not None:
        return plain
    try:
        return EventIn.model_validate(raw)
    except pydantic.ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "event"
        raise _Invalid(f"Invalid event: {where}: {first['msg']}") from error


def _parse(index: int, raw: Any, nonce: str) -> _Event:
    """The event, or `_Invalid`; without a client id its key is `nonce` + index."""
    event = _envelope(raw)
    required = REQUIRED_DATA.get(event.type)
    if required is None:
        raise _Invalid(f"Unknown event type: {event.type}")
    missing = [name for name in required if name not in event.data]
    if missing:
        raise _Invalid(f"Missing required data field(s): {', '.join(missing)}")
    data = event.data
    for name in _ID_FIELDS:
        value = data.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > MAX_ID_LENGTH):
            raise _Invalid(f"Invalid event: data.{name} must be a string or null")
    if event.type == "mcp.server.status_changed" and data["status"] not in INSTALLATION_STATUSES:
        raise _Invalid(f"Invalid event: data.status must be one of "
                       f"{', '.join(sorted(INSTALLATION_STATUSES))}")
    if event.type == "mcp.tool.executed" and not isinstance(data["tool_name"], str):
        raise _Invalid("Invalid event: data.tool_name must be a string")
    list_field = _LIST_FIELDS.get(event.type)
    if list_field is not None and not isinstance(data[list_field], list):
        raise _Invalid(f"Invalid event: data.{list_field} must be an array")
    occurred_at = event.timestamp
    if occurred_at.tzinfo is None:
        occurred_at = occurred_at.replace(tzinfo=UTC)
    key = event.id if event.id is not None else f"{nonce}.{index}"
    return _Event(index, event.type, occurred_at, data, key, event.id)


# ---- attribution --------------------------------------------------------------
async def _lookup(state: SatelliteState, events: Sequence[_Event]) -> _Lookup:
    """At most two queries for the whole batch: processes, installations (cached)."""
    found = _Lookup()
    server_ids = {event.data["server_id"] for event in events
                  if isinstance(event.data.get("server_id"), str)}
    if server_ids:
        found.processes = await _processes_named(state.id, server_ids)
    named = {value for event in events for name in ("installation_id", "server_id")
             if isinstance(value := event.data.get(name), str)}
    wanted = set(named)
    for value in named:  # distinct values: a batch names few installations many times
        parsed = installation_id_in(value)
        if parsed:
            wanted.add(parsed)
    wanted.update(str(inst) for inst, _ in found.processes.values() if inst)
    # Longer strings cannot be ids (a process id names its installation; parsed above).
    cached, missing = _installations.split({value for value in wanted if _could_be_id(value)})
    found.installations = {key: value for key, value in cached.items() if value is not None}
    if missing:
        rows = await McpInstallation.filter(id__in=missing).values(
            "id", "team_id", "pinned_satellite_id", "server_id"
        )
        loaded = {
            str(row["id"]): _Installation(
                str(row["id"]), str(row["team_id"]),
                None if row["pinned_satellite_id"] is None else str(row["pinned_satellite_id"]),
                str(row["server_id"]),
            )
            for row in rows
        }
        _installations.store(missing, loaded)
        found.installations.update(loaded)
    return found


async def _processes_named(satellite_id: str, process_ids: set[str]
                           ) -> dict[str, tuple[str | None, str | None]]:
    """(installation id, team id) of the satellite's processes among `process_ids`.

    Plain SQL: this runs for nearly every batch, and the ORM's query building
    costs several times what SQLite spends answering it.
    """
    conn = SatelliteProcess._meta.db
    mark = marks(conn, len(process_ids) + 1)
    table = SatelliteProcess._meta.db_table
    sql = (f'SELECT "process_id", "installation_id", "team_id" FROM "{table}" '  # noqa: S608
           f'WHERE "satellite_id" = {mark[0]} AND "process_id" IN ({", ".join(mark[1:])})')
    rows = await conn.execute_query_dict(sql, [satellite_id, *process_ids])
    return {str(row["process_id"]): (row["installation_id"], row["team_id"]) for row in rows}


def _could_be_id(value: str) -> bool:
    return 0 < len(value) <= ID_LENGTH


async def _existing_teams(team_ids: set[str]) -> set[str]:
    """The ids among `team_ids` that name a team (cached, one query for the rest)."""
    cached, missing = _teams.split({value for value in team_ids if _could_be_id(value)})
    existing = {key for key, value in cached.items() if value}
    if missing:
        rows = {str(team) for team in
                await Team.filter(id__in=missing).values_list("id", flat=True)}
        _teams.store(missing, dict.fromkeys(rows, True))
        existing |= rows
    return existing


def _attribute(state: SatelliteState, event: _Event, found: _Lookup) -> bool:
    """Set the event's installation, process and team, or raise `_Invalid`.

    True when the event's team is only its claimed `team_id`, whose existence the
    caller still has to check.
    """
    data = event.data
    installation: _Installation | None = None
    installation_id = data.get("installation_id")
    server_id = data.get("server_id")
    if isinstance(installation_id, str):
        installation = found.installations.get(installation_id)
    elif isinstance(server_id, str):
        process = found.processes.get(server_id)
        if process is not None:
            event.process_id = server_id
            if process[0]:
                installation = found.installations.get(str(process[0]))
        if installation is None:
            installation = found.installations.get(server_id) or found.installations.get(
                installation_id_in(server_id) or ""
            )
    claimed = data.get("team_id")
    if installation is not None:
        if state.team_id is not None and installation.team_id != state.team_id:
            raise _Invalid(f"Installation {installation.id} belongs to another team")
        if installation.pinned_satellite_id not in (None, state.id):
            raise _Invalid(f"Installation {installation.id} is not served by this satellite")
        if claimed is not None and claimed != installation.team_id:
            raise _Invalid(f"team_id {claimed} does not match the team of installation "
                           f"{installation.id}")
        event.installation = installation
        event.team_id = installation.team_id
        return False
    if state.team_id is not None:
        if claimed is not None and claimed != state.team_id:
            raise _Invalid(f"team_id {claimed} is not this satellite's team")
        event.team_id = state.team_id
        return False
    event.team_id = claimed
    return claimed is not None


# ---- writing ------------------------------------------------------------------
_EVENT_COLUMNS = ("satellite_id", "team_id", "installation_id", "event_type",
                  "client_event_id", "occurred_at", "data", "created_at")
_EVENT_RETURNING = ' ON CONFLICT DO NOTHING RETURNING "id", "satellite_id", "client_event_id"'
_USAGE_COLUMNS = ("satellite_id", "team_id", "installation_id", "tool_name", "server_slug",
                  "duration_ms", "success", "error_message", "occurred_at")
_SERVER_LOG_COLUMNS = ("installation_id", "team_id", "satellite_id", "level", "message",
                       "logged_at")


@dataclass(frozen=True, slots=True)
class _Batch:
    """One satellite's valid events, written together (possibly with other batches)."""

    state: SatelliteState
    events: Sequence[_Event]
    # when the batch arrived (the runtime's clock)
    now: datetime


def _prepare_rows(state: SatelliteState, events: Sequence[_Event], now: datetime) -> None:
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
                _text(data.get("server_slug"), 64), _number(data.get("duration_ms")),
                data.get("success") is not False, _text(data.get("error_message"), None),
                usage_time(event.occurred_at),
            )
        elif event.type == "mcp.server.logs" and installation_id is not None:
            event.log_rows = [
                (installation_id, event.team_id, state.id,
                 _text(item.get("level"), 16) or "info", _text(item.get("message"), None) or "",
                 log_time(_when(item.get("timestamp"), event.occurred_at)))
                for item in data["logs"] if isinstance(item, dict)
            ]


async def _insert_events(conn: BaseDBAsyncClient, batches: Sequence[_Batch]) -> None:
    """Multi-row INSERT … ON CONFLICT DO NOTHING RETURNING; replays read back by key.

    Keys are unique per satellite, so rows are told apart by (satellite, key).
    """
    unique: dict[tuple[str, str], _Event] = {}
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


async def _apply_effects(conn: BaseDBAsyncClient, batches: Sequence[_Batch],
                         now: datetime) -> None:
    """Apply the effects of the newly stored events, bulk where the type allows."""
    usage: list[tuple[Any, ...]] = []  # rows in _USAGE_COLUMNS order
    server_logs: list[tuple[Any, ...]] = []  # rows in _SERVER_LOG_COLUMNS order
    requests: list[McpRequestLog] = []
    activity: dict[tuple[str, str], McpClientActivity] = {}
    statuses: dict[str, tuple[str, str | None]] = {}  # the last status wins
    for batch in batches:
        state = batch.state
        for event in batch.events:
            if not event.new:
                continue
            data = event.data
            installation_id = event.installation.id if event.installation else None
            if event.usage_row is not None:
                usage.append(event.usage_row)
            elif event.log_rows:
                server_logs.extend(event.log_rows)
            elif event.type in _PROCESS_TYPES:
                await _apply_process(conn, state, event, now)
            elif event.type == "mcp.server.status_changed":
                if installation_id is not None:
                    message = data.get("status_message")
                    statuses[installation_id] = (
                        data["status"], message if isinstance(message, str) else None
                    )
            elif event.type == "mcp.tools.discovered":
                if event.installation is not None:
                    await _replace_tools(conn, event.installation, data["tools"],
                                         event.occurred_at)
            elif event.type == "mcp.request.logs":
                if installation_id is not None:
                    requests.extend(
                        McpRequestLog(
                            installation_id=installation_id, team_id=event.team_id,
                            satellite_id=state.id,
                            tool_name=_text(item.get("tool_name"), 255) or "",
                            tool_params=item.get("tool_params"),
                            response_time_ms=_number(item.get("response_time_ms")),
                            success=item.get("success") is not False,
                            logged_at=_when(item.get("timestamp"), event.occurred_at),
                        )
                        for item in data["requests"] if isinstance(item, dict)
                    )
            elif event.type == "mcp.client.activity" and event.team_id is not None:
                activity[(state.id, event.team_id)] = McpClientActivity(
                    satellite_id=state.id, team_id=event.team_id,
                    request_count=_count(data.get("request_count")),
                    tool_call_count=_count(data.get("tool_call_count")),
                    last_activity_at=_when(data.get("last_activity_at"), event.occurred_at),
                    updated_at=now,
                )
    for installation_id, (status, message) in statuses.items():
        await _set_installation_status(conn, installation_id, status, message)
    if usage:
        await insert_rows(conn, SatelliteUsageLog, _USAGE_COLUMNS, usage)
    if requests:
        await McpRequestLog.bulk_create(requests, batch_size=500, using_db=conn)
    if server_logs:
        await insert_rows(conn, McpServerLog, _SERVER_LOG_COLUMNS, server_logs)
        for installation_id in dict.fromkeys(str(row[0]) for row in server_logs):
            await _trim_server_logs(conn, installation_id)
    if activity:
        await McpClientActivity.bulk_create(
            list(activity.values()), using_db=conn, on_conflict=["satellite_id", "team_id"],
            update_fields=["request_count", "tool_call_count", "last_activity_at", "updated_at"],
        )


async def _set_installation_status(conn: BaseDBAsyncClient, installation_id: str, status: str,
                                   message: str | None) -> None:
    """Only `status` and `status_message`, as the ORM's queryset update would (no updated_at)."""
    mark = marks(conn, 3)
    table = McpInstallation._meta.db_table
    sql = (f'UPDATE "{table}" SET "status" = {mark[0]}, "status_message" = {mark[1]} '  # noqa: S608
           f'WHERE "id" = {mark[2]}')
    await conn.execute_query(sql, [status, message, installation_id])


_PROCESS_STATES: dict[str, tuple[ProcessStatus, HealthStatus]] = {
    "mcp.server.started": (ProcessStatus.RUNNING, HealthStatus.HEALTHY),
    "mcp.server.crashed": (ProcessStatus.FAILED, HealthStatus.UNHEALTHY),
    "mcp.server.restarted": (ProcessStatus.RUNNING, HealthStatus.HEALTHY),
    "mcp.server.dormant": (ProcessStatus.STOPPED, HealthStatus.UNKNOWN),
    "mcp.server.respawned": (ProcessStatus.RUNNING, HealthStatus.HEALTHY),
}


async def _apply_process(conn: BaseDBAsyncClient, state: SatelliteState, event: _Event,
                         now: datetime) -> None:
    """Update the process the event names; create its row when the satellite never reported it."""
    data = event.data
    server_id = data.get("server_id")
    if not isinstance(server_id, str) or not server_id:
        return
    status, health = _PROCESS_STATES[event.type]
    fields: dict[str, Any] = {"status": status, "health_status": health, "updated_at": now,
                              "last_reported_at": event.occurred_at}
    if event.type == "mcp.server.crashed":
        fields["error_message"] = (
            f"exited with code {data.get('exit_code')}, signal {data.get('signal')}"
            f" after {data.get('uptime_seconds')} s (crash {data.get('crash_count')})"
        )
        fields["os_pid"] = None
    elif event.type == "mcp.server.dormant":
        fields["os_pid"] = None
    else:
        pid = data.get("new_process_id" if event.type == "mcp.server.restarted" else "process_id")
        fields["os_pid"] = pid if isinstance(pid, int) and _is_int(pid) and 0 <= pid < 2**31 \
            else None
        fields["started_at"] = event.occurred_at
        fields["error_message"] = None
    processes = SatelliteProcess.filter(satellite_id=state.id).using_db(conn)
    if event.process_id is not None:
        changed = await processes.filter(process_id=event.process_id).update(**fields)
    elif event.installation is not None:
        changed = await processes.filter(installation_id=event.installation.id).update(**fields)
    else:
        changed = 0
    if changed:
        return
    await SatelliteProcess.create(
        using_db=conn, satellite_id=state.id, process_id=server_id,
        server_name=_text(data.get("server_slug"), 255),
        installation_id=event.installation.id if event.installation else None,
        team_id=event.team_id, **fields,
    )


async def _replace_tools(conn: BaseDBAsyncClient, installation: _Installation,
                         tools: list[Any], at: datetime) -> None:
    await McpTool.filter(installation_id=installation.id).using_db(conn).delete()
    rows = [
        McpTool(
            installation_id=installation.id, team_id=installation.team_id,
            tool_name=item["tool_name"][:255],
            description=_text(item.get("description"), None),
            input_schema=item.get("input_schema"),
            token_count=_count(item.get("token_count")) if item.get("token_count") is not None
            else None,
            discovered_at=at,
        )
        for item in tools
        if isinstance(item, dict) and isinstance(item.get("tool_name"), str)
    ]
    if rows:
        await McpTool.bulk_create(rows, batch_size=500, using_db=conn)


async def _trim_server_logs(conn: BaseDBAsyncClient, installation_id: str) -> None:
    """Keep the newest `MAX_SERVER_LOGS_PER_INSTALLATION` lines of one installation.

    One statement: with no line beyond the bound the subquery is NULL and nothing goes.
    """
    mark = marks(conn, 2)
    table = McpServerLog._meta.db_table
    # The table name is our constant; the installation id is a bound parameter.
    sql = (
        f'DELETE FROM "{table}" WHERE "installation_id" = {mark[0]} AND "id" <= '  # noqa: S608
        f'(SELECT "id" FROM "{table}" WHERE "installation_id" = {mark[1]} '
        f'ORDER BY "id" DESC LIMIT 1 OFFSET {MAX_SERVER_LOGS_PER_INSTALLATION})'
    )
    await conn.execute_query(sql, [installation_id, installation_id])


async def _redact_request_logs(events: Iterable[_Event]) -> None:
    """Redact `tool_params` of request-log events before anything stores or publishes them.

    Secret-looking keys always; also the names the installation's server marks
    secret in any of its schemas (one query for the batch).
    """
    logs = [event for event in events if event.type == "mcp.request.logs"]
    if not logs:
        return
    server_ids = {event.installation.server_id for event in logs if event.installation}
    names: dict[str, frozenset[str]] = {}
    if server_ids:
        rows = await McpServer.filter(id__in=list(server_ids)).values("id", *_SCHEMA_FIELDS)
        for row in rows:
            names[str(row["id"])] = frozenset(
                _normalise(entry["name"])
                for name in _SCHEMA_FIELDS
                for entry in (row[name] if isinstance(row[name], list) else [])
                if isinstance(entry, dict) and entry.get("secret")
                and isinstance(entry.get("name"), str)
            )
    for event in logs:
        secrets = names.get(event.installation.server_id, frozenset()) if event.installation \
            else frozenset()
        event.data = {
            **event.data,
            "requests": [
                {**item, "tool_params": redact(item["tool_params"], secrets)}
                if isinstance(item, dict) and "tool_params" in item else item
                for item in event.data["requests"]
            ],
        }


def _normalise(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


def redact(value: Any, secret_names: frozenset[str] = frozenset(), depth: int = 0) -> Any:
    """Replace values under secret-looking keys (and schema secrets), at any depth."""
    if depth > 20:
        return REDACTED
    if isinstance(value, dict):
        cleaned: dict[str, Any] = {}
        for key, item in value.items():
            normal = _normalise(str(key))
            if normal in secret_names or any(part in normal for part in _SECRET_FRAGMENTS):
                cleaned[key] = REDACTED
            else:
                cleaned[key] = redact(item, secret_names, depth + 1)
        return cleaned
    if isinstance(value, list):
        return [redact(item, secret_names, depth + 1) for item in value]
    return value


# ---- small value helpers --------------------------------------------------------
def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        return number if abs(number) < 1e15 else None
    return None


def _count(value: Any) -> int:
    if isinstance(value, int | float) and not isinstance(value, bool) and value == value:
        return max(0, min(int(value), 2**62))
    return 0


def _text(value: Any, limit: int | None) -> str | None:
    if not isinstance(value, str):
        return None
    return value if limit is None else value[:limit]


def _when(value: Any, default: datetime) -> datetime:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return default
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    return default


# ---- the use case ---------------------------------------------------------------
_RETRYABLE: tuple[type[BaseException], ...] = (*DATABASE_ERRORS, ValueError, TypeError)


async def _write_batches(batches: list[_Batch]) -> None:
    """The batches' events and effects in ONE transaction that starts with a write."""
    now = max(batch.now for batch in batches)
    async with in_transaction() as conn:
        await _insert_events(conn, batches)
        await _apply_effects(conn, batches, now)


def _writer() -> GroupCommit[_Batch]:
    return group_commit("events", lambda: GroupCommit(_write_batches, _RETRYABLE))


async def ingest_events(rt: FleetContext, state: SatelliteState, raw_events: Sequence[Any]
                        ) -> IngestResult:
    """Validate, attribute, store and publish one batch; see the module docstring."""
    failures: list[EventFailure] = []
    parsed: list[_Event] = []
    nonce = SERVER_KEY_PREFIX + new_id()
    for index, raw in enumerate(raw_events):
        try:
            parsed.append(_parse(index, raw, nonce))
        except _Invalid as error:
            failures.append(EventFailure(index, _type_of(raw), str(error)))
            if str(error).startswith("Unknown event type"):
                log.warning("unknown event type", extra={
                    "op": "events", "satellite_id": state.id, "type": _type_of(raw)})
    valid: list[_Event] = []
    if parsed:
        found = await _lookup(state, parsed)
        claims: list[_Event] = []
        for event in parsed:
            try:
                (claims if _attribute(state, event, found) else valid).append(event)
            except _Invalid as error:
                failures.append(EventFailure(event.index, event.type, str(error)))
        if claims:
            teams = await _existing_teams({str(event.team_id) for event in claims})
            for event in claims:
                if event.team_id in teams:
                    valid.append(event)
                else:
                    failures.append(EventFailure(event.index, event.type,
                                                 f"Unknown team: {event.team_id}"))
            valid.sort(key=lambda event: event.index)
    await _redact_request_logs(valid)
    stored = []
    for event in await _store_all(state, valid, failures, rt.clock.now()):
        if event.id is None:  # a replayed key removed meanwhile (retention): nothing to ack
            failures.append(EventFailure(event.index, event.type, "Event could not be stored"))
        else:
            stored.append(event)
    failures.sort(key=lambda failure: failure.index)
    stored.sort(key=lambda event: event.index)
    fresh = [event for event in stored if event.new]
    await _publish(rt, state, fresh)
    if fresh:
        rt.metrics.events.labels(outcome="accepted").inc(len(fresh))
    if len(stored) > len(fresh):
        rt.metrics.events.labels(outcome="replayed").inc(len(stored) - len(fresh))
    if failures:
        rt.metrics.events.labels(outcome="failed").inc(len(failures))
    return IngestResult([str(event.id) for event in stored], failures)


async def _publish(rt: FleetContext, state: SatelliteState, fresh: Sequence[_Event]) -> None:
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


async def _store_all(state: SatelliteState, valid: list[_Event],
                     failures: list[EventFailure], now: datetime) -> list[_Event]:
    """The whole batch in one transaction (shared with concurrent batches); on failure,
    each event in its own."""
    if not valid:
        return []
    _prepare_rows(state, valid, now)
    try:
        await _writer().write(_Batch(state, valid, now))
        return valid
    except _RETRYABLE:
        log.warning("event batch write failed; retrying event by event", exc_info=True,
                    extra={"op": "events", "satellite_id": state.id, "events": len(valid)})
    stored: list[_Event] = []
    for event in valid:
        event.id, event.new = None, False
        try:
            await _write_batches([_Batch(state, [event], now)])
        except _RETRYABLE:
            log.warning("event could not be stored", exc_info=True, extra={
                "op": "events", "satellite_id": state.id, "type": event.type})
            failures.append(EventFailure(event.index, event.type, "Event could not be stored"))
            continue
        stored.append(event)
    return stored


def _type_of(raw: Any) -> str | None:
    if isinstance(raw, dict) and isinstance(raw.get("type"), str):
        return str(raw["type"])[:64]
    return None


__all__ = ["INSTALLATION_STATUSES", "EventFailure", "IngestResult", "ingest_events", "redact"]
