"""Effects that keep one row per key: the satellite's processes (per `server_id`),
client sessions (per `session_id`) and applied-config state (per satellite)
(docs/protocol.md §10, "Several events about one thing in one batch").

Each event is a set of column values; the events about one key are merged in
order (a later value replaces an earlier one), so applying the merge once leaves
the row as applying the events one by one would, and a key named several times
in one batch costs one write. The write is an upsert on the key's unique
constraint, so neither a row never seen before nor a concurrent writer is a
storage failure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model

from app.models import McpClientSession, SatelliteConfigState, SatelliteProcess
from app.models.enums import HealthStatus, ProcessStatus
from app.services.telemetry.model import Event
from app.services.telemetry.values import int32, number, text, when

_PROCESS_STATES: dict[str, tuple[ProcessStatus, HealthStatus]] = {
    "mcp.server.started": (ProcessStatus.RUNNING, HealthStatus.HEALTHY),
    "mcp.server.crashed": (ProcessStatus.FAILED, HealthStatus.UNHEALTHY),
    "mcp.server.restarted": (ProcessStatus.RUNNING, HealthStatus.HEALTHY),
    "mcp.server.stopped": (ProcessStatus.STOPPED, HealthStatus.UNKNOWN),
    "mcp.server.permanently_failed": (ProcessStatus.FAILED, HealthStatus.UNHEALTHY),
    "mcp.server.dormant": (ProcessStatus.STOPPED, HealthStatus.UNKNOWN),
    "mcp.server.respawned": (ProcessStatus.RUNNING, HealthStatus.HEALTHY),
}
PROCESS_TYPES = frozenset(_PROCESS_STATES)
# The pid of a process that runs after the event (others clear it).
_PID_KEYS = {"mcp.server.started": "process_id", "mcp.server.restarted": "new_process_id",
             "mcp.server.respawned": "process_id"}


@dataclass(slots=True)
class _Row:
    """The merged change of one key: the values it sets, and those a new row also gets."""

    sets: dict[str, Any] = field(default_factory=dict)
    creates: dict[str, Any] = field(default_factory=dict)


async def _upsert(conn: BaseDBAsyncClient, model: type[Model], key: tuple[str, ...],
                  rows: Iterable[_Row]) -> None:
    """Insert each row, or update the values it `sets` where its key exists.

    One statement per distinct set of columns (a batch's rows usually share one).
    """
    groups: dict[tuple[str, ...], list[Model]] = {}
    for row in rows:
        groups.setdefault(tuple(row.sets), []).append(model(**{**row.creates, **row.sets}))
    for columns, objects in groups.items():
        await model.bulk_create(objects, batch_size=500, using_db=conn, on_conflict=key,
                                update_fields=columns)


# ---- processes ----------------------------------------------------------------------

@dataclass(slots=True)
class _Process:
    satellite_id: str
    server_id: str
    # the satellite's process row the events name (attribution), or their installation
    process_id: str | None
    installation_id: str | None
    row: _Row = field(default_factory=_Row)


class Processes:
    """Process lifecycle events per (satellite, `server_id`), merged in order."""

    def __init__(self) -> None:
        self._changes: dict[tuple[str, str], _Process] = {}

    def add(self, satellite_id: str, event: Event) -> None:
        data = event.data
        server_id = data.get("server_id")
        if not isinstance(server_id, str) or not server_id:
            return
        change = self._changes.get((satellite_id, server_id))
        if change is None:
            change = self._changes[(satellite_id, server_id)] = _Process(
                satellite_id, server_id, event.process_id,
                event.installation.id if event.installation else None,
            )
            change.row.creates.update(
                satellite_id=satellite_id, process_id=server_id, team_id=event.team_id,
                installation_id=change.installation_id,
            )
        name = text(data.get("server_slug"), 255) or text(data.get("server_name"), 255)
        if name is not None:
            change.row.creates["server_name"] = name
        change.row.sets.update(_process_values(event))

    async def write(self, conn: BaseDBAsyncClient, now: datetime) -> None:
        """Update the named process (or the installation's); upsert `server_id` otherwise."""
        created: list[_Row] = []
        for change in self._changes.values():
            change.row.sets["updated_at"] = now
            processes = SatelliteProcess.filter(satellite_id=change.satellite_id).using_db(conn)
            changed = 0
            if change.process_id is not None:
                changed = await processes.filter(process_id=change.process_id).update(
                    **change.row.sets)
            elif change.installation_id is not None:
                changed = await processes.filter(installation_id=change.installation_id).update(
                    **change.row.sets)
            if not changed:
                created.append(change.row)
        await _upsert(conn, SatelliteProcess, ("satellite_id", "process_id"), created)


def _process_values(event: Event) -> dict[str, Any]:
    data = event.data
    status, health = _PROCESS_STATES[event.type]
    values: dict[str, Any] = {"status": status, "health_status": health,
                              "last_reported_at": event.occurred_at, "os_pid": None}
    pid_key = _PID_KEYS.get(event.type)
    if pid_key is not None:
        pid = int32(data.get(pid_key))
        values["os_pid"] = pid if pid is not None and pid >= 0 else None
        values["started_at"] = event.occurred_at
        values["error_message"] = None
    elif event.type == "mcp.server.crashed":
        values["error_message"] = (
            f"exited with code {data.get('exit_code')}, signal {data.get('signal')}"
            f" after {data.get('uptime_seconds')} s (crash {data.get('crash_count')})"
        )
    elif event.type == "mcp.server.permanently_failed":
        values["error_message"] = (
            f"permanently failed after {data.get('total_crashes')} crashes"
            f" (no restart expected): {data.get('last_error')}"
        )
    return values


# ---- client sessions ----------------------------------------------------------------

class Sessions:
    """Client connections per (satellite, `session_id`), merged in order.

    `connected` opens the session (who, from what, where); `disconnected` closes
    it (a session never seen opening is created closed, its start the end minus
    the duration when known); `activity` with a `session_id` only updates an
    existing session (last activity, client name, the user when kept).
    """

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], _Row] = {}
        self._opened_or_closed: set[tuple[str, str]] = set()  # the others only update

    def _row(self, satellite_id: str, event: Event, *, opens_or_closes: bool = True) -> _Row:
        key = (satellite_id, str(event.data["session_id"]))
        row = self._rows.get(key)
        if row is None:
            row = self._rows[key] = _Row(creates={"satellite_id": key[0], "session_id": key[1]})
        if opens_or_closes:
            self._opened_or_closed.add(key)
        return row

    def connected(self, satellite_id: str, event: Event) -> None:
        data = event.data
        row = self._row(satellite_id, event)
        row.creates.pop("connected_at", None)
        row.sets.update(
            team_id=event.team_id, client_type=text(data.get("client_type"), 64),
            transport=text(data.get("transport"), 32),
            user_agent=text(data.get("user_agent"), 512),
            ip_address=text(data.get("ip_address"), 64), connected_at=event.occurred_at,
            disconnected_at=None, duration_seconds=None, tool_execution_count=None,
            disconnect_reason=None,
        )

    def disconnected(self, satellite_id: str, event: Event) -> None:
        data = event.data
        row = self._row(satellite_id, event)
        duration = number(data.get("connection_duration_seconds"))
        if "connected_at" not in row.sets and duration is not None and duration >= 0:
            row.creates["connected_at"] = event.occurred_at - timedelta(seconds=duration)
        row.sets.update(
            team_id=event.team_id, disconnected_at=event.occurred_at, duration_seconds=duration,
            tool_execution_count=int32(data.get("tool_execution_count")),
            disconnect_reason=text(data.get("disconnect_reason"), 64),
        )

    def activity(self, satellite_id: str, event: Event) -> None:
        data = event.data
        if not isinstance(data.get("session_id"), str):
            return
        row = self._row(satellite_id, event, opens_or_closes=False)
        row.sets["last_activity_at"] = when(data.get("last_activity_at"), event.occurred_at)
        client_name = text(data.get("client_name"), 255)
        if client_name is not None:
            row.sets["client_name"] = client_name
        if isinstance(data.get("user_id"), str):  # kept: a member of the team (attribution)
            row.sets["user_id"] = data["user_id"]

    async def write(self, conn: BaseDBAsyncClient, now: datetime) -> None:
        upserted: list[_Row] = []
        for key, row in self._rows.items():
            row.sets["updated_at"] = now
            if key in self._opened_or_closed:
                upserted.append(row)
            else:
                await McpClientSession.filter(satellite_id=key[0], session_id=key[1]).using_db(
                    conn).update(**row.sets)
        await _upsert(conn, McpClientSession, ("satellite_id", "session_id"), upserted)


# ---- applied configuration ----------------------------------------------------------

_NO_ERROR = dict.fromkeys(("error_at", "error_type", "error_message", "error_status_code"))


class ConfigStates:
    """`config.refreshed` and `config.error` per satellite, merged in order."""

    def __init__(self) -> None:
        self._rows: dict[str, _Row] = {}

    def _row(self, satellite_id: str) -> _Row:
        row = self._rows.get(satellite_id)
        if row is None:
            row = self._rows[satellite_id] = _Row(creates={"satellite_id": satellite_id})
        return row

    def refreshed(self, satellite_id: str, event: Event) -> None:
        data = event.data
        change = data.get("change_detected")
        self._row(satellite_id).sets.update(
            refreshed_at=event.occurred_at, config_hash=text(data.get("config_hash"), 255),
            server_count=int32(data.get("server_count")),
            teams_count=int32(data.get("teams_count")),
            change_detected=change if isinstance(change, bool) else None,
            fetch_duration_ms=number(data.get("fetch_duration_ms")), **_NO_ERROR,
        )

    def error(self, satellite_id: str, event: Event) -> None:
        data = event.data
        self._row(satellite_id).sets.update(
            error_at=event.occurred_at, error_type=text(data.get("error_type"), 64),
            error_message=text(data.get("error_message"), None),
            error_status_code=int32(data.get("status_code")),
        )

    async def write(self, conn: BaseDBAsyncClient, now: datetime) -> None:
        for row in self._rows.values():
            row.sets["updated_at"] = now
        await _upsert(conn, SatelliteConfigState, ("satellite_id",), self._rows.values())


__all__ = ["PROCESS_TYPES", "ConfigStates", "Processes", "Sessions"]
