"""What people read, as scoped, ordered querysets (design.md §3–4).

Every list or single-object read of the GraphQL API (and SSE) starts here, so
the scope chokepoint (`scope.scoped`) is applied on every path and the
orderings are defined once: satellites by name, commands and events newest first.
An object outside the caller's scope is indistinguishable from a missing one.
"""

from __future__ import annotations

from tortoise.queryset import QuerySet

from app.errors import NotFound
from app.models import McpInstallation, SatelliteCommand, SatelliteEvent, Team
from app.models import Satellite as SatelliteRow
from app.models.enums import CommandStatus, SatelliteStatus
from app.services.principals import Principal
from app.services.scope import Kind, scoped


def satellites(
    principal: Principal, *, team_id: str | None = None, status: SatelliteStatus | None = None
) -> QuerySet[SatelliteRow]:
    query = SatelliteRow.exclude(status=SatelliteStatus.DELETED)
    if team_id is not None:
        query = query.filter(team_id=team_id)
    if status is not None:
        query = query.filter(status=status)
    return scoped(principal, query, Kind.SATELLITES).order_by("name", "id")


async def satellite(principal: Principal, satellite_id: str) -> SatelliteRow | None:
    return await satellites(principal).filter(id=satellite_id).first()


def commands(
    principal: Principal, *, satellite_id: str | None = None,
    status: CommandStatus | None = None,
) -> QuerySet[SatelliteCommand]:
    query = SatelliteCommand.all()
    if satellite_id is not None:
        query = query.filter(satellite_id=satellite_id)
    if status is not None:
        query = query.filter(status=status)
    return scoped(principal, query, Kind.TEAM_OWNED).order_by("-created_at", "-id")


async def command(principal: Principal, command_id: str) -> SatelliteCommand | None:
    return await commands(principal).filter(id=command_id).first()


def events(principal: Principal, *, satellite_id: str | None = None) -> QuerySet[SatelliteEvent]:
    query = SatelliteEvent.all()
    if satellite_id is not None:
        query = query.filter(satellite_id=satellite_id)
    return scoped(principal, query, Kind.TEAM_OWNED).order_by("-id")


def teams(principal: Principal) -> QuerySet[Team]:
    return scoped(principal, Team.all(), Kind.TEAMS).order_by("name", "id")


async def team(principal: Principal, team_id: str) -> Team | None:
    return await teams(principal).filter(id=team_id).first()




async def require_satellite(principal: Principal, satellite_id: str) -> SatelliteRow:
    """The satellite, or NOT_FOUND whether it is missing or out of the caller's scope."""
    row = await satellite(principal, satellite_id)
    if row is None:
        raise NotFound("Satellite not found", code="satellite_not_found")
    return row


def installations(principal: Principal, *, team_id: str | None = None
                  ) -> QuerySet[McpInstallation]:
    query = McpInstallation.all()
    if team_id is not None:
        query = query.filter(team_id=team_id)
    return scoped(principal, query, Kind.TEAM_OWNED).order_by("name", "id")


__all__ = [
    "installations",
    "command", "commands", "events", "require_satellite", "satellite", "satellites", "team",
    "teams",
]
