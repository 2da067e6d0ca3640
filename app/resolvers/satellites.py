"""Satellite, command and team reads: scoped querysets (`services.reads`) → types."""

from __future__ import annotations

import strawberry

from app.models import Satellite as SatelliteRow
from app.models import enums as model
from app.schema.context import Info, principal_of
from app.schema.enums import SatelliteStatus
from app.schema.pagination import Connection, paginate
from app.schema.selection import asked_for
from app.schema.types.commands import Command
from app.schema.types.people import Team
from app.schema.types.satellites import Satellite
from app.services.people import reads


async def satellites(
    info: Info, team_id: strawberry.ID | None = None, status: SatelliteStatus | None = None,
    first: int | None = 50, after: str | None = None, search: str | None = None,
) -> Connection[Satellite]:
    query = reads.satellites(
        principal_of(info), team_id=team_id,
        status=None if status is None else model.SatelliteStatus(status.value), search=search,
    )
    # Only ids from the database: the fields come from the in-memory fleet state.
    return await paginate(query.only("id", "name"), first=first, after=after,
                          to_node=lambda rows: _from_memory(info, rows))


async def _from_memory(info: Info, rows: list[SatelliteRow]) -> list[Satellite]:
    fleet = info.context.rt.fleet
    missing = [row.id for row in rows if fleet.get(row.id) is None]
    loaded = {row.id: row for row in await SatelliteRow.filter(id__in=missing)} if missing else {}
    nodes: list[Satellite] = []
    for row in rows:
        state = fleet.get(row.id)
        if state is not None:
            nodes.append(Satellite.of_state(state))
        elif row.id in loaded:
            nodes.append(Satellite.of(loaded[row.id], info))
    await _prefetch(info, nodes)
    return nodes


async def _prefetch(info: Info, nodes: list[Satellite]) -> None:
    """Load the page's relations the query asks for, one query each, before the nodes
    resolve: their fields then answer synchronously (no task per node)."""
    asked = asked_for(info, ("processCount", "team"))
    loaders = info.context.loaders
    if "processCount" in asked and nodes:
        await loaders.process_count.load_many([node.id for node in nodes])
    team_ids = {node.team_id for node in nodes if node.team_id is not None}
    if "team" in asked and team_ids:
        await loaders.team.load_many(list(team_ids))


async def satellite(info: Info, id: strawberry.ID) -> Satellite | None:  # noqa: A002 (GraphQL name)
    row = await reads.satellite(principal_of(info), id)
    return None if row is None else Satellite.of(row, info)


async def commands(
    info: Info, satellite_id: strawberry.ID, status: model.CommandStatus | None = None,
    first: int | None = 50, after: str | None = None,
) -> Connection[Command]:
    principal = principal_of(info)
    await reads.require_satellite(principal, satellite_id)
    query = reads.commands(principal, satellite_id=satellite_id, status=status)
    return await paginate(query, first=first, after=after,
                          to_node=lambda rows: [Command.of(row) for row in rows])


async def command(info: Info, id: strawberry.ID) -> Command | None:  # noqa: A002
    row = await reads.command(principal_of(info), id)
    return None if row is None else Command.of(row)


async def teams(info: Info) -> list[Team]:
    return [Team.of(row) for row in await reads.teams(principal_of(info))]


async def team(info: Info, id: strawberry.ID) -> Team | None:  # noqa: A002
    row = await reads.team(principal_of(info), id)
    return None if row is None else Team.of(row)


__all__ = ["command", "commands", "satellite", "satellites", "team", "teams"]
