"""What people read of what satellites report about their clients and themselves: client
sessions, applied-config state and resource-limit breaches (docs/graphql.md §2–3).

Like `people.reads`, every read here is a queryset narrowed by the one scope rule:

- sessions and breaches are team-owned rows (a member of T sees T's, also on a
  global satellite serving several teams; rows without a team are for global
  administrators only);
- a satellite's config state is satellite-wide, visible to whoever may see the
  satellite (global satellites' to everyone who sees them);
- where a client connected from (address, user agent) is for the administrators of
  the session's team, like the addresses of the audit log (`may_see_client_origin`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from tortoise.expressions import F, Subquery
from tortoise.functions import Coalesce
from tortoise.models import Model
from tortoise.queryset import QuerySet

from app.models import (
    McpClientSession,
    ResourceLimitBreach,
    Satellite,
    SatelliteConfigState,
    SatelliteProcess,
)
from app.services.people import reads
from app.services.people.principals import Principal
from app.services.people.scope import Kind, can_see, scoped

M = TypeVar("M", bound=Model)


def session_start() -> Coalesce:
    """When a session began: its connection, or for one never seen opening (and of
    unknown duration) its end."""
    return Coalesce("connected_at", F("disconnected_at"))


def _team_owned(principal: Principal, query: QuerySet[M], *,
                satellite_id: str | None, team_id: str | None) -> QuerySet[M]:
    if satellite_id is not None:
        query = query.filter(satellite_id=satellite_id)
    if team_id is not None:
        query = query.filter(team_id=team_id)
    return scoped(principal, query, Kind.TEAM_OWNED)


def client_sessions(
    principal: Principal, *, satellite_id: str | None = None, team_id: str | None = None,
    open: bool | None = None,  # noqa: A002 (the GraphQL argument's name)
) -> QuerySet[McpClientSession]:
    """Client sessions, newest first; `open` keeps only the open (True) or closed (False)."""
    query = McpClientSession.all()
    if open is not None:
        query = query.filter(disconnected_at__isnull=open)
    return _team_owned(principal, query, satellite_id=satellite_id, team_id=team_id).annotate(
        started=session_start()).order_by("-started", "-id")


def may_see_client_origin(principal: Principal, session: McpClientSession) -> bool:
    """Where a client connected from (its address and user agent) is for global
    administrators and the administrators of the session's team."""
    return can_see(principal, Kind.TEAM_ADMINISTERED, session)


def limit_breaches(principal: Principal, *, satellite_id: str | None = None,
                   team_id: str | None = None) -> QuerySet[ResourceLimitBreach]:
    """Resource-limit breaches, newest first."""
    return _team_owned(principal, ResourceLimitBreach.all(), satellite_id=satellite_id,
                       team_id=team_id).order_by("-occurred_at", "-id")


def config_states(principal: Principal, satellite_ids: list[str]
                  ) -> QuerySet[SatelliteConfigState]:
    """The config states of the visible satellites among `satellite_ids`."""
    visible = reads.satellites(principal).filter(id__in=sorted(set(satellite_ids)))
    return SatelliteConfigState.filter(satellite_id__in=Subquery(visible.values("id")))


@dataclass(frozen=True, slots=True)
class SatelliteReport:
    """One satellite as an operator inspects it (`groundstation satellite show`)."""

    satellite: Satellite
    processes: list[SatelliteProcess]  # the visible ones, by process id
    config_state: SatelliteConfigState | None  # None until it reports applying a config


async def satellite_report(principal: Principal, satellite_id: str) -> SatelliteReport:
    """The satellite (NOT_FOUND when missing or out of scope), its processes and the
    config it last applied."""
    satellite = await reads.require_satellite(principal, satellite_id)
    processes = await scoped(principal, SatelliteProcess.filter(satellite_id=satellite.id),
                             Kind.TEAM_OWNED).order_by("process_id", "id")
    state = await config_states(principal, [satellite.id]).first()
    return SatelliteReport(satellite, processes, state)


__all__ = [
    "SatelliteReport", "satellite_report",
    "client_sessions", "config_states", "limit_breaches", "may_see_client_origin",
    "session_start",
]
