"""Who may change what (design.md §3): one function per kind of object.

Each returns the object when the caller may change it. An object the caller
may not even see answers NOT_FOUND, exactly like a missing one; one it may see
but not change answers FORBIDDEN. Reads are narrowed by `scope`/`reads`; these
are for writes.
"""

from __future__ import annotations

from app.errors import Forbidden, NotFound
from app.models import McpInstallation, SatelliteCommand, Team
from app.models import Satellite as SatelliteRow
from app.models.enums import SatelliteType
from app.services import reads
from app.services.principals import Principal


def require_global_admin(principal: Principal) -> None:
    if not principal.is_global_admin:
        raise Forbidden("Only global administrators may do this")


async def require_team_admin(principal: Principal, team_id: str) -> Team:
    """A team the caller administers (global admins administer every team)."""
    team = await reads.team(principal, team_id)
    if team is None:
        raise NotFound("Team not found", code="team_not_found")
    if not principal.is_team_admin(team.id):
        raise Forbidden("Only the team's administrators may do this")
    return team


async def require_satellite_admin(principal: Principal, satellite_id: str) -> SatelliteRow:
    """A satellite the caller may edit, delete, re-key: global ones for global admins,
    team ones for their team's admins."""
    satellite = await reads.require_satellite(principal, satellite_id)
    team_id: str | None = satellite.team_id  # type: ignore[attr-defined]
    allowed = principal.is_global_admin or (
        satellite.satellite_type is SatelliteType.TEAM and principal.is_team_admin(team_id)
    )
    if not allowed:
        raise Forbidden("You may view this satellite but not change it")
    return satellite


async def require_installation_admin(principal: Principal, installation_id: str
                                     ) -> McpInstallation:
    installation = await reads.installations(principal).filter(id=installation_id).first()
    if installation is None:
        raise NotFound("Installation not found", code="installation_not_found")
    if not principal.is_team_admin(installation.team_id):  # type: ignore[attr-defined]
        raise Forbidden("Only the team's administrators may change its installations")
    return installation


async def require_command_owner(principal: Principal, command_id: str) -> SatelliteCommand:
    """A command the caller may cancel: global admins any; team admins their team's."""
    command = await reads.command(principal, command_id)
    if command is None:
        raise NotFound("Command not found", code="command_not_found")
    if not principal.is_team_admin(command.team_id):  # type: ignore[attr-defined]
        raise Forbidden("Only administrators may cancel commands")
    return command


__all__ = [
    "require_command_owner",
    "require_global_admin",
    "require_installation_admin",
    "require_satellite_admin",
    "require_team_admin",
]
