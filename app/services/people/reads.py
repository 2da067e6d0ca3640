"""What people read, as scoped, ordered querysets (docs/graphql.md §2–3).

Every list or single-object read of the GraphQL API (and SSE) starts here, so
the scope chokepoint (`scope.scoped`) is applied on every path and the
orderings are defined once: satellites by name, commands and events newest first.
An object outside the caller's scope is indistinguishable from a missing one.
"""

from __future__ import annotations

from datetime import datetime

from tortoise.expressions import Subquery
from tortoise.queryset import QuerySet

from app.errors import Forbidden, NotFound, ValidationError
from app.models import (
    Alert,
    AuditEntry,
    McpInstallation,
    McpInstallationRevision,
    McpServerLog,
    McpTool,
    RegistrationToken,
    SatelliteCommand,
    SatelliteEvent,
    SatelliteMetricRollup,
    SatelliteUsageLog,
    Team,
    TeamMembership,
    User,
)
from app.models import Satellite as SatelliteRow
from app.models.enums import AlertState, CommandStatus, SatelliteStatus, SatelliteType
from app.services.people.principals import Principal
from app.services.people.scope import Kind, scoped

MAX_HISTORY_BUCKETS = 10_000
_BUCKET_SECONDS = {"minute": 60, "hour": 3600}


def checked_history_range(start: datetime, end: datetime, resolution: str) -> None:
    """A range of at most `MAX_HISTORY_BUCKETS` buckets, `from` before `to`."""
    if resolution not in _BUCKET_SECONDS:
        raise ValidationError("resolution must be minute or hour")
    if start.tzinfo is None or end.tzinfo is None:
        raise ValidationError("`from` and `to` need a time zone (e.g. 2026-12-05T10:00:00Z)")
    if end <= start:
        raise ValidationError("`to` must be after `from`")
    if (end - start).total_seconds() / _BUCKET_SECONDS[resolution] > MAX_HISTORY_BUCKETS:
        raise ValidationError(f"At most {MAX_HISTORY_BUCKETS:,} buckets per request; "
                              "narrow the range or use a coarser resolution")


async def metrics_history(principal: Principal, satellite_id: str, start: datetime,
                          end: datetime, resolution: str) -> list[SatelliteMetricRollup]:
    """A satellite's metric buckets in [start, end), oldest first. Like heartbeat history:
    a global satellite's are for global administrators (docs/graphql.md §2)."""
    checked_history_range(start, end, resolution)
    satellite = await require_satellite(principal, satellite_id)
    if satellite.satellite_type is SatelliteType.GLOBAL and not principal.is_global_admin:
        raise Forbidden("Metrics of global satellites are for administrators",
                        code="aggregated_only")
    return await SatelliteMetricRollup.filter(
        satellite_id=satellite_id, resolution=resolution, bucket__gte=start, bucket__lt=end,
    ).order_by("bucket")


def alerts(principal: Principal, *, team_id: str | None = None,
           states: frozenset[AlertState] | None = None) -> QuerySet[Alert]:
    """Alerts newest first: a team's for its members; those of no team (a global
    satellite's, the webhooks of global admins) for global admins only."""
    query = Alert.all()
    if team_id is not None:
        query = query.filter(team_id=team_id)
    if states:
        query = query.filter(state__in=sorted(states))
    return scoped(principal, query, Kind.TEAM_OWNED).order_by("-opened_at", "-id")


async def alert(principal: Principal, alert_id: str) -> Alert | None:
    return await alerts(principal).filter(id=alert_id).first()


MAX_SEARCH = 100


def satellites(
    principal: Principal, *, team_id: str | None = None, status: SatelliteStatus | None = None,
    search: str | None = None,
) -> QuerySet[SatelliteRow]:
    """Satellites by name; `search` keeps those whose name contains it (any case)."""
    query = SatelliteRow.exclude(status=SatelliteStatus.DELETED)
    if team_id is not None:
        query = query.filter(team_id=team_id)
    if status is not None:
        query = query.filter(status=status)
    if search:
        if len(search) > MAX_SEARCH:
            raise ValidationError(f"search is longer than {MAX_SEARCH} characters")
        query = query.filter(name__icontains=search)
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


async def installation(principal: Principal, installation_id: str) -> McpInstallation | None:
    return await installations(principal).filter(id=installation_id).first()


async def require_installation(principal: Principal, installation_id: str) -> McpInstallation:
    """The installation, or NOT_FOUND whether it is missing or out of the caller's scope."""
    row = await installation(principal, installation_id)
    if row is None:
        raise NotFound("Installation not found", code="installation_not_found")
    return row


async def require_team(principal: Principal, team_id: str) -> Team:
    """The team, or NOT_FOUND whether it is missing or the caller is not a member."""
    row = await team(principal, team_id)
    if row is None:
        raise NotFound("Team not found", code="team_not_found")
    return row


def installation_tools(principal: Principal, installation_ids: list[str]) -> QuerySet[McpTool]:
    query = McpTool.filter(installation_id__in=sorted(set(installation_ids)))
    return scoped(principal, query, Kind.TEAM_OWNED).order_by("tool_name", "id")


def installation_revisions(principal: Principal, installation_ids: list[str]
                           ) -> QuerySet[McpInstallationRevision]:
    """Revisions of the visible installations among `installation_ids`, newest first."""
    visible = scoped(principal, McpInstallation.filter(id__in=sorted(set(installation_ids))),
                     Kind.TEAM_OWNED)
    return McpInstallationRevision.filter(
        installation_id__in=Subquery(visible.values("id"))
    ).order_by("-revision")


def server_logs(principal: Principal, installation_id: str) -> QuerySet[McpServerLog]:
    """An installation's server log lines, newest first."""
    query = McpServerLog.filter(installation_id=installation_id)
    return scoped(principal, query, Kind.TEAM_OWNED).order_by("-logged_at", "-id")


def usage_logs(principal: Principal, *, team_id: str | None = None
               ) -> QuerySet[SatelliteUsageLog]:
    query = SatelliteUsageLog.all()
    if team_id is not None:
        query = query.filter(team_id=team_id)
    return scoped(principal, query, Kind.TEAM_OWNED)


__all__ = [
    "installation", "installation_revisions", "installation_tools", "installations",
    "require_installation", "require_team", "server_logs", "usage_logs",
    "command", "commands", "events", "require_satellite", "satellite", "satellites", "team",
    "teams",
]


# ---- people, tokens, audit (administration) ------------------------------------------


def registration_tokens(principal: Principal, *, team_id: str | None = None
                        ) -> QuerySet[RegistrationToken]:
    """A team's tokens, or without `team_id` the global ones; newest first.
    Visible to the team's administrators (global tokens: global administrators)."""
    query = (RegistrationToken.filter(team_id__isnull=True) if team_id is None
             else RegistrationToken.filter(team_id=team_id))
    return scoped(principal, query, Kind.TEAM_ADMINISTERED).order_by("-created_at", "-jti")


async def registration_token(principal: Principal, jti: str) -> RegistrationToken | None:
    query = RegistrationToken.filter(jti=jti)
    return await scoped(principal, query, Kind.TEAM_ADMINISTERED).first()


def users(principal: Principal) -> QuerySet[User]:
    return scoped(principal, User.all(), Kind.USERS).order_by("email", "id")


def audit_entries(principal: Principal, *, team_id: str | None = None) -> QuerySet[AuditEntry]:
    """Audit entries, newest first: all for global administrators, their teams' for
    team administrators (entries without a team are for global administrators only)."""
    query = AuditEntry.all() if team_id is None else AuditEntry.filter(team_id=team_id)
    return scoped(principal, query, Kind.TEAM_ADMINISTERED).order_by("-id")


def team_members(principal: Principal, team_ids: list[str]) -> QuerySet[TeamMembership]:
    """Memberships of these teams with their users, for the teams' administrators."""
    query = TeamMembership.filter(team_id__in=sorted(set(team_ids)))
    return scoped(principal, query, Kind.TEAM_ADMINISTERED).select_related("user").order_by(
        "user__email", "id")


__all__ += [
    "audit_entries", "registration_token", "registration_tokens", "team_members", "users",
]
