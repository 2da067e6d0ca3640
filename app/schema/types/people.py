"""Users, teams and memberships as people see them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from app.models import Team as TeamRow
from app.models import User as UserRow
from app.schema.context import Info, principal_of
from app.schema.enums import GlobalRole, TeamRole
from app.schema.pagination import Connection
from app.schema.types.metrics import MetricsResolution, UsageBucket
from app.schema.types.refs import UserRef
from app.schema.types.telemetry import (
    ClientSession,
    ResourceLimitBreach,
    client_sessions_page,
    limit_breaches_page,
)
from app.services.telemetry.usage_history import team_usage_history


@strawberry.type
class User:
    id: strawberry.ID
    email: str
    global_role: GlobalRole
    created_at: datetime

    @classmethod
    def of(cls, row: UserRow) -> User:
        return cls(id=strawberry.ID(row.id), email=row.email, global_role=row.global_role,
                   created_at=row.created_at)


@strawberry.type
class Team:
    id: strawberry.ID
    name: str
    slug: str
    max_processes: int | None
    max_memory_per_process_mb: int | None
    max_cpu_percent: float | None
    created_at: datetime

    @classmethod
    def of(cls, row: TeamRow) -> Team:
        return cls(id=strawberry.ID(row.id), name=row.name, slug=row.slug,
                   max_processes=row.max_processes,
                   max_memory_per_process_mb=row.max_memory_per_process_mb,
                   max_cpu_percent=row.max_cpu_percent, created_at=row.created_at)

    # Members, for the team's administrators (others get an empty list: scope TEAM_ADMINISTERED).
    @strawberry.field
    async def members(self, info: Info) -> list[TeamMember]:
        rows = await info.context.loaders.team_members.load(self.id)
        return [TeamMember(team_id=self.id, user=UserRef.of(row.user), role=row.role)
                for row in rows]

    # The team's client sessions on every satellite, global ones included; newest first.
    @strawberry.field
    async def client_sessions(
        self, info: Info, first: int | None = 50, after: str | None = None,
        open: bool | None = None,  # noqa: A002 (GraphQL name)
    ) -> Connection[ClientSession]:
        return await client_sessions_page(info, team_id=self.id, open=open, first=first,
                                          after=after)

    # Usage per minute or hour in [from, to) for charts (at most 10,000 buckets, dense).
    @strawberry.field
    async def usage_history(
        self, info: Info, from_: Annotated[datetime, strawberry.argument(name="from")],
        to: datetime, resolution: MetricsResolution = MetricsResolution.HOUR,
    ) -> list[UsageBucket]:
        history = await team_usage_history(principal_of(info), self.id, from_, to,
                                           resolution.value)
        return [UsageBucket.of(bucket) for bucket in history]

    @strawberry.field
    async def resource_limit_breaches(self, info: Info, first: int | None = 50,
                                      after: str | None = None
                                      ) -> Connection[ResourceLimitBreach]:
        return await limit_breaches_page(info, team_id=self.id, first=first, after=after)


@strawberry.type
class TeamMember:
    team_id: strawberry.ID
    user: UserRef
    role: TeamRole


@strawberry.type
class LoginPayload:
    token: str
    user: User


__all__ = ["LoginPayload", "Team", "TeamMember", "User"]
