"""Administration as people see it: registration tokens, the audit log, team members,
and the one-time secrets that issuing a token or re-keying a satellite returns."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from app.models import AuditEntry as AuditRow
from app.models import RegistrationToken as TokenRow
from app.models import TeamMembership
from app.models import User as UserRow
from app.models.enums import ActorType
from app.schema.context import Info
from app.schema.enums import TeamRole, TokenScope
from app.schema.types.people import TeamMember
from app.schema.types.refs import UserRef
from app.schema.types.satellites import Satellite

# Upper-case GraphQL values (USER, SATELLITE, CLI, SYSTEM, ANONYMOUS), like every enum here.
strawberry.enum(ActorType, name="AuditActorType")


@strawberry.type
class RegistrationToken:
    """A registration token's record; the token itself is shown only once, when issued."""

    id: strawberry.ID  # the token's jti
    scope: TokenScope
    team_id: strawberry.ID | None
    satellite_name: str | None
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: TokenRow) -> RegistrationToken:
        team_id: str | None = row.team_id  # type: ignore[attr-defined]
        return cls(
            id=strawberry.ID(row.jti), scope=row.scope,
            team_id=None if team_id is None else strawberry.ID(team_id),
            satellite_name=row.satellite_name, created_at=row.created_at,
            expires_at=row.expires_at, used_at=row.used_at, revoked_at=row.revoked_at,
        )


@strawberry.type
class IssuedRegistrationToken:
    token: str  # shown once: only its digest is stored
    registration_token: RegistrationToken


@strawberry.type
class RotatedKey:
    api_key: str  # shown once: only its hash is stored
    satellite: Satellite


@strawberry.type
class AuditActor:
    """Who acted: a user (userId, email while the user exists), a satellite
    (satelliteId), the command line, the system, or an anonymous caller."""

    type: ActorType
    user_id: strawberry.ID | None
    satellite_id: strawberry.ID | None
    address: str | None

    @strawberry.field
    async def email(self, info: Info) -> str | None:
        if self.user_id is None:
            return None
        user: UserRow | None = await info.context.loaders.user.load(self.user_id)
        return None if user is None else user.email


@strawberry.type
class AuditEntry:
    id: strawberry.ID
    at: datetime
    actor: AuditActor
    action: str
    object_type: str | None
    object_id: str | None
    team_id: strawberry.ID | None
    details: JSON

    @classmethod
    def of(cls, row: AuditRow) -> AuditEntry:
        user_id, satellite_id = row.actor_user_id, row.actor_satellite_id
        return cls(
            id=strawberry.ID(str(row.id)), at=row.at,
            actor=AuditActor(
                type=row.actor_type,
                user_id=None if user_id is None else strawberry.ID(user_id),
                satellite_id=None if satellite_id is None else strawberry.ID(satellite_id),
                address=row.address,
            ),
            action=row.action, object_type=row.object_type, object_id=row.object_id,
            team_id=None if row.team_id is None else strawberry.ID(row.team_id),
            details=row.details,
        )


def team_member(row: TeamMembership, user: UserRow) -> TeamMember:
    """A membership as `TeamMember { teamId user { id email } role }`."""
    return TeamMember(team_id=strawberry.ID(row.team_id),  # type: ignore[attr-defined]
                      user=UserRef.of(user), role=TeamRole(row.role))


__all__ = [
    "AuditActor",
    "AuditEntry",
    "IssuedRegistrationToken",
    "RegistrationToken",
    "RotatedKey",
    "team_member",
]
