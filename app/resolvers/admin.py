"""People, teams, tokens, satellites and commands as administrators change them.

Each resolver: the caller → a permission check (`services.permissions`) → one
service call → a type. Authorization comes before any check of argument values
(docs/graphql.md §4), so a caller without the right learns nothing about the input rules.
"""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.scalars import JSON

from app.models import User as UserRow
from app.models import enums as model
from app.schema.context import Info, principal_of
from app.schema.enums import (
    CommandPriority,
    CommandType,
    GlobalRole,
    SatelliteStatus,
    TeamRole,
    TokenScope,
)
from app.schema.pagination import Connection, paginate
from app.schema.types.admin import (
    AuditEntry,
    IssuedRegistrationToken,
    RegistrationToken,
    RotatedKey,
    team_member,
)
from app.schema.types.commands import Command
from app.schema.types.people import Team, TeamMember, User
from app.schema.types.satellites import Satellite
from app.services.commands import queue as commands
from app.services.people import permissions, reads, teams, users
from app.services.satellites import admin as satellites
from app.services.satellites import tokens

# ---- queries ----------------------------------------------------------------------------


async def registration_tokens(info: Info, team_id: strawberry.ID | None = None
                              ) -> list[RegistrationToken]:
    principal = principal_of(info)
    if team_id is not None:
        await reads.require_team(principal, team_id)
    rows = await reads.registration_tokens(principal, team_id=team_id)
    return [RegistrationToken.of(row) for row in rows]


async def users_(info: Info, first: int | None = 50, after: str | None = None
                 ) -> Connection[User]:
    return await paginate(reads.users(principal_of(info)), first=first, after=after,
                          to_node=lambda rows: [User.of(row) for row in rows])


async def audit_log(info: Info, team_id: strawberry.ID | None = None, first: int | None = 50,
                    after: str | None = None) -> Connection[AuditEntry]:
    principal = principal_of(info)
    if team_id is not None:
        await reads.require_team(principal, team_id)
    return await paginate(reads.audit_entries(principal, team_id=team_id), first=first,
                          after=after, to_node=lambda rows: [AuditEntry.of(row) for row in rows])


# ---- people and teams ---------------------------------------------------------------------


async def create_user(info: Info, email: str, password: str,
                      global_role: GlobalRole | None = GlobalRole.GLOBAL_USER) -> User:
    principal = principal_of(info)
    permissions.require_global_admin(principal)
    row = await users.create_user(info.context.rt, email=email, password=password,
                                  global_role=global_role or GlobalRole.GLOBAL_USER,
                                  actor=principal.actor)
    return User.of(row)


async def create_team(info: Info, name: str, slug: str) -> Team:
    principal = principal_of(info)
    permissions.require_global_admin(principal)
    row = await teams.create_team(info.context.rt, name=name, slug=slug, admin_email=None,
                                  actor=principal.actor)
    return Team.of(row)


async def add_team_member(info: Info, team_id: strawberry.ID, user_id: strawberry.ID,
                          role: TeamRole) -> TeamMember:
    principal = principal_of(info)
    await permissions.require_team_admin(principal, team_id)
    row = await teams.add_team_member(info.context.rt, team_id, user_id, role,
                                      actor=principal.actor)
    user = await UserRow.get(id=user_id)
    return team_member(row, user)


async def remove_team_member(info: Info, team_id: strawberry.ID, user_id: strawberry.ID
                             ) -> bool:
    principal = principal_of(info)
    await permissions.require_team_admin(principal, team_id)
    return await teams.remove_team_member(info.context.rt, team_id, user_id,
                                          actor=principal.actor)


async def set_team_limits(
    info: Info, team_id: strawberry.ID,
    max_processes: int | None = strawberry.UNSET,
    max_memory_per_process_mb: int | None = strawberry.UNSET,
    max_cpu_percent: float | None = strawberry.UNSET,
) -> Team:
    """Omitted limits stay as they are; an explicit null clears one (global default)."""
    principal = principal_of(info)
    permissions.require_global_admin(principal)
    await reads.require_team(principal, team_id)
    given: dict[str, Any] = {
        "max_processes": max_processes,
        "max_memory_per_process_mb": max_memory_per_process_mb,
        "max_cpu_percent": max_cpu_percent,
    }
    limits = {name: value for name, value in given.items() if value is not strawberry.UNSET}
    row = await teams.update_team(info.context.rt, team_id, limits=limits,
                                  actor=principal.actor)
    return Team.of(row)


# ---- registration tokens -----------------------------------------------------------------


async def create_registration_token(
    info: Info, scope: TokenScope, team_id: strawberry.ID | None = None,
    expires_in_hours: int | None = None, satellite_name: str | None = None,
) -> IssuedRegistrationToken:
    principal = principal_of(info)
    await permissions.require_token_issuer(principal, scope, team_id)
    issued = await tokens.issue_registration_token(
        info.context.rt, scope=scope, team_id=team_id, hours=expires_in_hours,
        satellite_name=satellite_name, actor=principal.actor)
    return IssuedRegistrationToken(token=issued.token,
                                   registration_token=RegistrationToken.of(issued.row))


async def create_registration_tokens(
    info: Info, scope: TokenScope, count: int, team_id: strawberry.ID | None = None,
    expires_in_hours: int | None = None,
) -> list[IssuedRegistrationToken]:
    principal = principal_of(info)
    await permissions.require_token_issuer(principal, scope, team_id)
    issued = await tokens.issue_registration_tokens(
        info.context.rt, count=count, scope=scope, team_id=team_id, hours=expires_in_hours,
        actor=principal.actor)
    return [IssuedRegistrationToken(token=token.token,
                                    registration_token=RegistrationToken.of(token.row))
            for token in issued]


async def revoke_registration_token(info: Info, id: strawberry.ID) -> bool:  # noqa: A002
    principal = principal_of(info)
    token = await permissions.require_token_admin(principal, id)
    await tokens.revoke_registration_token(info.context.rt, token.jti, actor=principal.actor)
    return True


# ---- satellites --------------------------------------------------------------------------


async def _satellite(info: Info, satellite_id: str) -> Satellite:
    row = await reads.require_satellite(principal_of(info), satellite_id)
    return Satellite.of(row, info)


async def update_satellite(
    info: Info, id: strawberry.ID, name: str | None = None,  # noqa: A002
    status: SatelliteStatus | None = None, config_overrides: JSON | None = None,
    allowed_cidrs: list[str] | None = None, labels: JSON | None = None,
) -> Satellite:
    principal = principal_of(info)
    await permissions.require_satellite_admin(principal, id)
    await satellites.update_satellite(
        info.context.rt, id, name=name,
        status=None if status is None else model.SatelliteStatus(status.value),
        config_overrides=config_overrides, allowed_cidrs=allowed_cidrs, labels=labels,
        actor=principal.actor)
    return await _satellite(info, id)


async def delete_satellite(info: Info, id: strawberry.ID) -> bool:  # noqa: A002
    principal = principal_of(info)
    await permissions.require_satellite_admin(principal, id)
    await satellites.delete_satellite(info.context.rt, id, actor=principal.actor)
    return True


async def rotate_satellite_key(info: Info, id: strawberry.ID) -> RotatedKey:  # noqa: A002
    principal = principal_of(info)
    await permissions.require_satellite_admin(principal, id)
    api_key = await satellites.rotate_satellite_key(info.context.rt, id, actor=principal.actor)
    return RotatedKey(api_key=api_key, satellite=await _satellite(info, id))


# ---- commands ------------------------------------------------------------------------------


async def enqueue_command(
    info: Info, satellite_id: strawberry.ID, command_type: CommandType,
    priority: CommandPriority | None = CommandPriority.NORMAL, payload: JSON | None = None,
    expires_in_seconds: int | None = None,
) -> Command:
    principal = principal_of(info)
    target = await permissions.require_command_sender(principal, satellite_id, command_type,
                                                      payload)
    row = await commands.enqueue_command(
        info.context.rt, satellite_id=target.satellite.id, command_type=command_type,
        priority=priority or CommandPriority.NORMAL, payload=target.payload,
        expires_in_seconds=expires_in_seconds, actor=principal.actor, team_id=target.team_id)
    return Command.of(row)


async def cancel_command(info: Info, id: strawberry.ID) -> Command:  # noqa: A002
    principal = principal_of(info)
    await permissions.require_command_owner(principal, id)
    row = await commands.cancel_command(info.context.rt, id, actor=principal.actor)
    return Command.of(row)


__all__ = [
    "add_team_member", "audit_log", "cancel_command", "create_registration_token",
    "create_registration_tokens",
    "create_team", "create_user", "delete_satellite", "enqueue_command",
    "registration_tokens", "remove_team_member", "revoke_registration_token",
    "rotate_satellite_key", "set_team_limits", "update_satellite", "users_",
]
