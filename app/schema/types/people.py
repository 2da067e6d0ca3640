"""Users, teams and memberships as people see them."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.models import Team as TeamRow
from app.models import User as UserRow
from app.schema.enums import GlobalRole, TeamRole


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
class UserRef:
    """A user named by another object (owner, actor): id and email only."""

    id: strawberry.ID
    email: str

    @classmethod
    def of(cls, row: UserRow) -> UserRef:
        return cls(id=strawberry.ID(row.id), email=row.email)


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


@strawberry.type
class TeamMember:
    team_id: strawberry.ID
    user: UserRef
    role: TeamRole


@strawberry.type
class LoginPayload:
    token: str
    user: User


__all__ = ["LoginPayload", "Team", "TeamMember", "User", "UserRef"]
