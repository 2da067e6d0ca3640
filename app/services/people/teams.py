"""Teams: creation (optionally with a team admin), changes, lookup (docs/graphql.md §3;
the `team create` command: docs/operations.md §3)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from app.bus import Channels
from app.errors import Conflict, NotFound, ValidationError
from app.models import Team, TeamMembership, User
from app.models.enums import TeamRole
from app.services.commands.config_push import push_for_team
from app.services.common.actors import Actor
from app.services.common.audit import record_audit
from app.services.people.users import get_user_by_email

if TYPE_CHECKING:
    from app.services.people.context import PeopleContext

SLUG_PATTERN = r"[a-z0-9][a-z0-9-]{1,62}"
_SLUG_RE = re.compile(SLUG_PATTERN)
MAX_NAME_LENGTH = 100


def _slug_taken(slug: str) -> Conflict:
    return Conflict(f"A team with slug '{slug}' already exists", code="slug_taken")


def _checked_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise ValidationError(
            f"Team names have 1 to {MAX_NAME_LENGTH} characters",
            details=[{"field": "name", "message": "invalid length"}],
        )
    return name


def _checked_slug(slug: str) -> str:
    if not _SLUG_RE.fullmatch(slug):
        raise ValidationError(
            "Team slugs are 2-63 characters of a-z, 0-9 and '-', starting with a letter or digit",
            details=[{"field": "slug", "message": "invalid slug"}],
        )
    return slug


async def create_team(
    rt: PeopleContext, *, name: str, slug: str, admin_email: str | None, actor: Actor
) -> Team:
    """Create a team. Slugs match `^[a-z0-9][a-z0-9-]{1,62}$` and are unique (409
    `slug_taken`); names are 1–100 characters. With `admin_email`, that user must
    exist (NotFound) and becomes the team's `team_admin`."""
    name = _checked_name(name)
    _checked_slug(slug)
    admin = await get_user_by_email(admin_email) if admin_email is not None else None
    if await Team.exists(slug=slug):
        raise _slug_taken(slug)
    try:
        async with in_transaction() as connection:
            team = await Team.create(name=name, slug=slug, using_db=connection)
            if admin is not None:
                await TeamMembership.create(
                    team=team, user=admin, role=TeamRole.TEAM_ADMIN, using_db=connection
                )
    except IntegrityError as error:  # created concurrently
        raise _slug_taken(slug) from error
    await record_audit(
        "team.created",
        actor=actor,
        object_type="team",
        object_id=team.id,
        team_id=team.id,
        details={"name": name, "slug": slug, "admin_user_id": admin.id if admin else None},
    )
    return team


async def get_team(team_id: str) -> Team:
    team = await Team.get_or_none(id=team_id)
    if team is None:
        raise NotFound("Team not found", code="team_not_found")
    return team


async def get_team_by_slug(slug: str) -> Team:
    team = await Team.get_or_none(slug=slug)
    if team is None:
        raise NotFound(f"Team not found (slug '{slug}')", code="team_not_found")
    return team


_LIMITS: dict[str, tuple[type, float]] = {
    "max_processes": (int, 10_000),
    "max_memory_per_process_mb": (int, 1_048_576),
    "max_cpu_percent": (float, 100.0),
}


def _checked_limit(name: str, value: Any) -> int | float | None:
    if value is None:
        return None
    kind, ceiling = _LIMITS[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or (
        kind is int and not float(value).is_integer()
    ) or not 0 < value <= ceiling:
        raise ValidationError(
            f"{name} must be a positive {'integer' if kind is int else 'number'} "
            f"of at most {ceiling:g} (or null for the global default)",
            details=[{"field": name, "message": "out of range"}],
        )
    return int(value) if kind is int else float(value)


async def update_team(
    rt: PeopleContext,
    team_id: str,
    *,
    name: str | None = None,
    slug: str | None = None,
    limits: dict[str, int | float | None] | None = None,
    actor: Actor,
) -> Team:
    """Rename a team, change its slug or its resource limits (`None` clears a limit).

    A new slug or new limits change what satellites receive (process ids carry
    the slug, `satellite_config` the limits), so the global satellites and the
    team's own get a `configure`. Unknown limit names are refused.
    """
    team = await get_team(team_id)
    changes: dict[str, Any] = {}
    if name is not None and name.strip() != team.name:
        changes["name"] = _checked_name(name)
    if slug is not None and slug != team.slug:
        changes["slug"] = _checked_slug(slug)
    for limit, value in (limits or {}).items():
        if limit not in _LIMITS:
            raise ValidationError(f"Unknown team limit '{limit}' (known: {', '.join(_LIMITS)})",
                                  details=[{"field": limit, "message": "unknown limit"}])
        checked = _checked_limit(limit, value)
        if checked != getattr(team, limit):
            changes[limit] = checked
    if not changes:
        return team
    try:
        await Team.filter(id=team.id).update(**changes)
    except IntegrityError as error:
        raise _slug_taken(changes["slug"]) from error
    await record_audit("team.updated", actor=actor, object_type="team", object_id=team.id,
                       team_id=team.id, details={"changed": sorted(changes)})
    if set(changes) - {"name"}:
        await push_for_team(rt, team.id)
    return await get_team(team.id)


async def add_team_member(
    rt: PeopleContext, team_id: str, user_id: str, role: TeamRole, *, actor: Actor
) -> TeamMembership:
    """Make a user a member of a team with `role`, or change the role of a member."""
    team = await get_team(team_id)
    if not await User.exists(id=user_id):
        raise NotFound("User not found", code="user_not_found")
    role = TeamRole(role)
    membership = await TeamMembership.get_or_none(team_id=team.id, user_id=user_id)
    if membership is None:
        try:
            membership = await TeamMembership.create(team_id=team.id, user_id=user_id, role=role)
        except IntegrityError:  # added concurrently: set the role instead
            membership = await TeamMembership.get(team_id=team.id, user_id=user_id)
    if membership.role is not role:
        await TeamMembership.filter(id=membership.id).update(role=role)
        membership.role = role
    await record_audit("team.member_added", actor=actor, object_type="team", object_id=team.id,
                       team_id=team.id, details={"user_id": user_id, "role": role.value})
    await rt.bus.publish(Channels.MEMBERSHIPS_CHANGED, {"user_id": user_id, "team_id": team.id})
    return membership


async def remove_team_member(
    rt: PeopleContext, team_id: str, user_id: str, *, actor: Actor
) -> bool:
    """Remove a user from a team; False when they were not a member."""
    team = await get_team(team_id)
    removed = await TeamMembership.filter(team_id=team.id, user_id=user_id).delete()
    if removed:
        await record_audit("team.member_removed", actor=actor, object_type="team",
                           object_id=team.id, team_id=team.id, details={"user_id": user_id})
        await rt.bus.publish(Channels.MEMBERSHIPS_CHANGED,
                             {"user_id": user_id, "team_id": team.id})
    return bool(removed)
