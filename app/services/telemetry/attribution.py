"""Attributing events to installations, processes and teams (docs/protocol.md §10,
"Team attribution").

- an event's team is the team of the installation or process it names
  (`installation_id`, or `server_id` matched against the satellite's process
  ids, then installation ids, then the installation id closing a config key);
  when it names none known, its `team_id`, which a team satellite may only set
  to its own team (null means the satellite's team); a `team_id` that disagrees
  with the named installation, an installation of another team (team satellite)
  or pinned to another satellite is a failure for that event;
- installations and teams are read through a short in-process cache
  (`LOOKUP_CACHE_SECONDS`, misses included): an installation or team created,
  changed or removed by another process (the CLI) is seen by event attribution
  at most that many seconds later; a claimed `team_id` is only looked up when
  the event names no known installation (one query for the batch, if any);
- the `user_id` of `mcp.client.activity` is kept only when that user is a member
  of the event's team, else dropped from the event (never a failure): one
  query for the batch when an activity event names a user, memberships cached
  like teams.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from app.models import McpInstallation, SatelliteProcess, Team, TeamMembership
from app.models.ids import ID_LENGTH
from app.services.common.storage import marks
from app.services.fleet.processes import installation_id_in
from app.services.fleet.state import SatelliteState
from app.services.telemetry.model import Event, Installation, Invalid

# How long a looked-up installation or team (or its absence) is reused (see the docstring).
LOOKUP_CACHE_SECONDS = 2.0
_LOOKUP_CACHE_LIMIT = 20_000

_V = TypeVar("_V")


@dataclass(slots=True)
class Lookup:
    """What `lookup` found for a batch: the satellite's processes and the installations."""

    processes: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    installations: dict[str, Installation] = field(default_factory=dict)


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


_installations: _TtlCache[Installation] = _TtlCache()
_teams: _TtlCache[bool] = _TtlCache()
_members: _TtlCache[bool] = _TtlCache()  # by "<team id> <user id>"


def clear_lookup_cache() -> None:
    """Forget cached installations, teams and memberships (the next batch reads them again)."""
    _installations.clear()
    _teams.clear()
    _members.clear()


async def lookup(state: SatelliteState, events: Sequence[Event]) -> Lookup:
    """At most two queries for the whole batch: processes, installations (cached)."""
    found = Lookup()
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
            str(row["id"]): Installation(
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


async def existing_teams(team_ids: set[str]) -> set[str]:
    """The ids among `team_ids` that name a team (cached, one query for the rest)."""
    cached, missing = _teams.split({value for value in team_ids if _could_be_id(value)})
    existing = {key for key, value in cached.items() if value}
    if missing:
        rows = {str(team) for team in
                await Team.filter(id__in=missing).values_list("id", flat=True)}
        _teams.store(missing, dict.fromkeys(rows, True))
        existing |= rows
    return existing


def attribute(state: SatelliteState, event: Event, found: Lookup) -> bool:
    """Set the event's installation, process and team, or raise `Invalid`.

    True when the event's team is only its claimed `team_id`, whose existence the
    caller still has to check (`existing_teams`).
    """
    data = event.data
    installation: Installation | None = None
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
            raise Invalid(f"Installation {installation.id} belongs to another team")
        if installation.pinned_satellite_id not in (None, state.id):
            raise Invalid(f"Installation {installation.id} is not served by this satellite")
        if claimed is not None and claimed != installation.team_id:
            raise Invalid(f"team_id {claimed} does not match the team of installation "
                          f"{installation.id}")
        event.installation = installation
        event.team_id = installation.team_id
        return False
    if state.team_id is not None:
        if claimed is not None and claimed != state.team_id:
            raise Invalid(f"team_id {claimed} is not this satellite's team")
        event.team_id = state.team_id
        return False
    event.team_id = claimed
    return claimed is not None


async def drop_outside_users(events: Sequence[Event]) -> None:
    """Remove the `user_id` of activity events whose user is not a member of their team."""
    named = [event for event in events if event.type == "mcp.client.activity"
             and isinstance(event.data.get("user_id"), str)]
    if not named:
        return
    keys = {f"{event.team_id} {event.data['user_id']}": event for event in named
            if event.team_id is not None and _could_be_id(event.data["user_id"])}
    cached, missing = _members.split(keys)
    members = {key for key, value in cached.items() if value}
    if missing:
        rows = await TeamMembership.filter(
            team_id__in={str(keys[key].team_id) for key in missing},
            user_id__in={str(keys[key].data["user_id"]) for key in missing},
        ).values_list("team_id", "user_id")
        found = {f"{team} {user}" for team, user in rows} & missing
        _members.store(missing, dict.fromkeys(found, True))
        members |= found
    for event in named:
        if f"{event.team_id} {event.data['user_id']}" not in members:
            del event.data["user_id"]
