"""What an operator looks up by what they type: a team by slug or id, a person by email
or id, an installation or a command by id (docs/operations.md §3).

Every lookup goes through the scoped reads (`reads.py`), so a principal finds only
what `scope.py` lets it see, and something out of scope is "not found" like
something missing. The command line looks up as `CLI_PRINCIPAL`.
"""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.expressions import Q

from app.errors import NotFound
from app.models import McpInstallation, SatelliteCommand, Team, TeamMembership, User
from app.services.mcp.preview import ConfigPreview, config_previews
from app.services.people import reads
from app.services.people.principals import Principal
from app.services.people.scope import Kind, scoped
from app.services.people.users import normalize_email


@dataclass(frozen=True, slots=True)
class TeamView:
    team: Team
    members: list[TeamMembership]  # with their users, by email


@dataclass(frozen=True, slots=True)
class UserView:
    user: User
    memberships: list[TeamMembership]  # with their teams, by slug


@dataclass(frozen=True, slots=True)
class InstallationView:
    installation: McpInstallation  # with its server and team
    preview: ConfigPreview  # the masked entry a satellite would receive


async def find_team(principal: Principal, slug_or_id: str) -> Team:
    team = await reads.teams(principal).filter(Q(slug=slug_or_id) | Q(id=slug_or_id)).first()
    if team is None:
        raise NotFound(f"Team not found (slug or id '{slug_or_id}')", code="team_not_found")
    return team


async def team_view(principal: Principal, slug_or_id: str) -> TeamView:
    team = await find_team(principal, slug_or_id)
    return TeamView(team, await reads.team_members(principal, [team.id]))


async def find_user(principal: Principal, email_or_id: str) -> User:
    query = Q(email=normalize_email(email_or_id)) | Q(id=email_or_id)
    user = await reads.users(principal).filter(query).first()
    if user is None:
        raise NotFound(f"User not found (email or id '{email_or_id}')", code="user_not_found")
    return user


async def user_view(principal: Principal, email_or_id: str) -> UserView:
    user = await find_user(principal, email_or_id)
    memberships = await scoped(
        principal, TeamMembership.filter(user_id=user.id), Kind.TEAM_ADMINISTERED
    ).select_related("team").order_by("team__slug", "id")
    return UserView(user, memberships)


async def installations(principal: Principal, *, team_slug: str | None = None
                        ) -> list[McpInstallation]:
    """Installations (with their server and team), of one team when `team_slug` is given."""
    team_id = None if team_slug is None else (await find_team(principal, team_slug)).id
    return await reads.installations(principal, team_id=team_id).select_related(
        "server", "team")


async def installation_view(principal: Principal, installation_id: str) -> InstallationView:
    await reads.require_installation(principal, installation_id)
    previews = await config_previews([installation_id])
    row = await McpInstallation.get(id=installation_id).select_related("server", "team")
    return InstallationView(row, previews.get(installation_id, ConfigPreview()))


async def require_command(principal: Principal, command_id: str) -> SatelliteCommand:
    command = await reads.command(principal, command_id)
    if command is None:
        raise NotFound("Command not found", code="command_not_found")
    return command


__all__ = [
    "InstallationView", "TeamView", "UserView", "find_team", "find_user", "installation_view",
    "installations", "require_command", "team_view", "user_view",
]
