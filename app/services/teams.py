"""Teams: creation (optionally with a team admin) and lookup (design.md §3, §8)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from app.errors import Conflict, NotFound, ValidationError
from app.models import Team, TeamMembership
from app.models.enums import TeamRole
from app.services.actors import Actor
from app.services.audit import record_audit
from app.services.users import get_user_by_email

if TYPE_CHECKING:
    from app.services.runtime import Runtime

SLUG_PATTERN = r"[a-z0-9][a-z0-9-]{1,62}"
_SLUG_RE = re.compile(SLUG_PATTERN)
MAX_NAME_LENGTH = 100


def _slug_taken(slug: str) -> Conflict:
    return Conflict(f"A team with slug '{slug}' already exists", code="slug_taken")


async def create_team(
    rt: Runtime, *, name: str, slug: str, admin_email: str | None, actor: Actor
) -> Team:
    """Create a team. Slugs match `^[a-z0-9][a-z0-9-]{1,62}$` and are unique (409
    `slug_taken`); names are 1–100 characters. With `admin_email`, that user must
    exist (NotFound) and becomes the team's `team_admin`."""
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise ValidationError(
            f"Team names have 1 to {MAX_NAME_LENGTH} characters",
            details=[{"field": "name", "message": "invalid length"}],
        )
    if not _SLUG_RE.fullmatch(slug):
        raise ValidationError(
            "Team slugs are 2-63 characters of a-z, 0-9 and '-', starting with a letter or digit",
            details=[{"field": "slug", "message": "invalid slug"}],
        )
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
        raise NotFound(f"No team with id '{team_id}'")
    return team


async def get_team_by_slug(slug: str) -> Team:
    team = await Team.get_or_none(slug=slug)
    if team is None:
        raise NotFound(f"No team with slug '{slug}'")
    return team
