"""What satellites report about their clients and themselves, as people see it: client
sessions, the applied-config state and resource-limit breaches (docs/graphql.md §3).

Sessions and breaches are team-owned (scoped like events); where a client connected
from is for the team's administrators (`services.telemetry.reads`).
"""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.models import McpClientSession
from app.models import ResourceLimitBreach as BreachRow
from app.models import SatelliteConfigState as ConfigStateRow
from app.schema.context import Info, principal_of
from app.schema.pagination import Connection, paginate
from app.schema.types.refs import UserRef
from app.services.telemetry import reads as reports


@strawberry.type
class ClientSession:
    """One MCP client's connection to a satellite for a team."""

    row: strawberry.Private[McpClientSession]
    id: strawberry.ID
    session_id: str
    satellite_id: strawberry.ID
    team_id: strawberry.ID | None
    client_type: str | None
    client_name: str | None
    transport: str | None
    connected_at: datetime | None
    disconnected_at: datetime | None
    duration_seconds: float | None
    tool_execution_count: int | None
    disconnect_reason: str | None
    last_activity_at: datetime | None

    @classmethod
    def of(cls, row: McpClientSession) -> ClientSession:
        return cls(
            row=row, id=strawberry.ID(str(row.id)), session_id=row.session_id,
            satellite_id=strawberry.ID(row.satellite_id),  # type: ignore[attr-defined]
            team_id=row.team_id,  # type: ignore[attr-defined]
            client_type=row.client_type, client_name=row.client_name, transport=row.transport,
            connected_at=row.connected_at, disconnected_at=row.disconnected_at,
            duration_seconds=row.duration_seconds,
            tool_execution_count=row.tool_execution_count,
            disconnect_reason=row.disconnect_reason, last_activity_at=row.last_activity_at,
        )

    # True until the satellite reports the disconnection.
    @strawberry.field
    def open(self) -> bool:
        return self.row.disconnected_at is None

    # Where the client connected from: for global administrators and the team's
    # administrators, null for others (`may_see_client_origin`).
    @strawberry.field
    def ip_address(self, info: Info) -> str | None:
        return self._origin(info, self.row.ip_address)

    @strawberry.field
    def user_agent(self, info: Info) -> str | None:
        return self._origin(info, self.row.user_agent)

    def _origin(self, info: Info, value: str | None) -> str | None:
        return value if reports.may_see_client_origin(principal_of(info), self.row) else None

    # The team member the satellite named, when it named one.
    @strawberry.field
    async def user(self, info: Info) -> UserRef | None:
        user_id: str | None = self.row.user_id  # type: ignore[attr-defined]
        user = None if user_id is None else await info.context.loaders.user.load(user_id)
        return None if user is None else UserRef.of(user)


@strawberry.type
class SatelliteConfigError:
    at: datetime
    type: str | None
    message: str | None
    status_code: int | None


@strawberry.type
class SatelliteConfigState:
    """The configuration the satellite last applied, and its last error fetching one."""

    refreshed_at: datetime | None
    config_hash: str | None
    server_count: int | None
    teams_count: int | None
    change_detected: bool | None
    fetch_duration_ms: float | None
    last_error: SatelliteConfigError | None = strawberry.field(
        description="Cleared by the next successful refresh.")

    @classmethod
    def of(cls, row: ConfigStateRow) -> SatelliteConfigState:
        error = None if row.error_at is None else SatelliteConfigError(
            at=row.error_at, type=row.error_type, message=row.error_message,
            status_code=row.error_status_code)
        return cls(refreshed_at=row.refreshed_at, config_hash=row.config_hash,
                   server_count=row.server_count, teams_count=row.teams_count,
                   change_detected=row.change_detected, fetch_duration_ms=row.fetch_duration_ms,
                   last_error=error)


@strawberry.type
class ResourceLimitBreach:
    """A team resource limit a satellite reported as exceeded."""

    id: strawberry.ID
    satellite_id: strawberry.ID
    team_id: strawberry.ID | None
    resource_type: str
    current_value: float | None
    limit_value: float | None
    occurred_at: datetime

    @classmethod
    def of(cls, row: BreachRow) -> ResourceLimitBreach:
        return cls(
            id=strawberry.ID(str(row.id)),
            satellite_id=strawberry.ID(row.satellite_id),  # type: ignore[attr-defined]
            team_id=row.team_id,  # type: ignore[attr-defined]
            resource_type=row.resource_type, current_value=row.current_value,
            limit_value=row.limit_value, occurred_at=row.occurred_at,
        )


async def client_sessions_page(
    info: Info, *, satellite_id: str | None = None, team_id: str | None = None,
    open: bool | None, first: int | None, after: str | None,  # noqa: A002
) -> Connection[ClientSession]:
    """`clientSessions` of a satellite or a team: the caller's visible ones, newest first."""
    query = reports.client_sessions(principal_of(info), satellite_id=satellite_id,
                                    team_id=team_id, open=open)
    return await paginate(query, first=first, after=after,
                          to_node=lambda rows: [ClientSession.of(row) for row in rows])


async def limit_breaches_page(
    info: Info, *, satellite_id: str | None = None, team_id: str | None = None,
    first: int | None, after: str | None,
) -> Connection[ResourceLimitBreach]:
    """`resourceLimitBreaches` of a satellite or a team: the visible ones, newest first."""
    query = reports.limit_breaches(principal_of(info), satellite_id=satellite_id,
                                   team_id=team_id)
    return await paginate(query, first=first, after=after,
                          to_node=lambda rows: [ResourceLimitBreach.of(row) for row in rows])


__all__ = [
    "ClientSession",
    "ResourceLimitBreach",
    "SatelliteConfigError",
    "SatelliteConfigState",
    "client_sessions_page",
    "limit_breaches_page",
]
