"""Who may change what (docs/graphql.md §2): one function per kind of object.

Each returns the object when the caller may change it. An object the caller
may not even see answers NOT_FOUND, exactly like a missing one; one it may see
but not change answers FORBIDDEN. Reads are narrowed by `scope`/`reads`; these
are for writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.errors import Forbidden, NotFound, ValidationError
from app.models import McpInstallation, McpServer, RegistrationToken, SatelliteCommand, Team
from app.models import Satellite as SatelliteRow
from app.models.enums import CommandType, SatelliteType, TokenScope
from app.services.mcp.config_merge import process_id
from app.services.people import reads
from app.services.people.principals import Principal


def require_global_admin(principal: Principal) -> None:
    if not principal.is_global_admin:
        raise Forbidden("Only global administrators may do this")


async def require_team_admin(principal: Principal, team_id: str) -> Team:
    """A team the caller administers (global admins administer every team)."""
    team = await reads.require_team(principal, team_id)
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
    installation = await reads.require_installation(principal, installation_id)
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


# ---- registration tokens ------------------------------------------------------------


def _is_any_admin(principal: Principal) -> bool:
    return principal.is_global_admin or bool(principal.admin_team_ids)


async def require_token_issuer(principal: Principal, scope: TokenScope, team_id: str | None
                               ) -> None:
    """Who may issue registration tokens: global ones, global administrators; team ones,
    the team's administrators. A team token without a team is left to the token
    service's validation, but only for callers who administer something."""
    if scope is TokenScope.GLOBAL:
        require_global_admin(principal)
    elif team_id is None:
        if not _is_any_admin(principal):
            raise Forbidden("Only administrators may issue registration tokens")
    else:
        await require_team_admin(principal, team_id)


async def require_token_admin(principal: Principal, jti: str) -> RegistrationToken:
    """A token the caller may revoke. Tokens are visible only to those who may manage
    them (scope `TEAM_ADMINISTERED`), so anything else is NOT_FOUND."""
    token = await reads.registration_token(principal, jti)
    if token is None:
        raise NotFound("Registration token not found", code="token_not_found")
    return token


# ---- commands people send -------------------------------------------------------------

_PROCESS_COMMANDS = frozenset({CommandType.SPAWN, CommandType.KILL, CommandType.RESTART})


@dataclass(frozen=True, slots=True)
class CommandTarget:
    """Where a person's command goes and to which team it belongs.

    `team_id` None means "the satellite's team" (enqueue_command's default);
    `payload` is the caller's, with `team_id`/`server_name` filled in from the
    installation it names.
    """

    satellite: SatelliteRow
    team_id: str | None
    payload: Any


async def require_command_sender(
    principal: Principal, satellite_id: str, command_type: CommandType, payload: Any
) -> CommandTarget:
    """Who may queue a command (docs/graphql.md §2), then the payload's binding to a team.

    Authorization first: global administrators may send to any satellite; team
    administrators to their team's satellites, and to global satellites only for
    an installation of a team they administer. Then the payload: on a global
    satellite a non-global-admin must name `installation_id`; a named
    installation must be visible (else NOT_FOUND), belong to the satellite's team
    (team satellites), not be pinned elsewhere; a payload `team_id` that disagrees
    with the installation's team is a VALIDATION error. The command then belongs to
    the installation's team, and its payload carries that `team_id` and, for
    spawn/kill/restart, the `server_name` the satellite knows the process by.
    """
    satellite = await reads.require_satellite(principal, satellite_id)
    satellite_team: str | None = satellite.team_id  # type: ignore[attr-defined]
    is_global = satellite.satellite_type is SatelliteType.GLOBAL
    if is_global and not _is_any_admin(principal):
        raise Forbidden("Only administrators may send commands to satellites")
    if not is_global and not principal.is_team_admin(satellite_team):
        raise Forbidden("Only the team's administrators may send commands to its satellites")
    # Argument values from here on.
    installation_id = payload.get("installation_id") if isinstance(payload, dict) else None
    if installation_id is None:
        if is_global and not principal.is_global_admin:
            raise ValidationError(
                "A command for a global satellite must name an installation of your team",
                details=[{"field": "payload.installation_id", "message": "required"}])
        return await _without_installation(satellite, payload)
    if not isinstance(installation_id, str):
        raise ValidationError("payload.installation_id must be a string",
                              details=[{"field": "payload.installation_id",
                                        "message": "not a string"}])
    return await _bound_to_installation(principal, satellite, command_type, payload,
                                        installation_id)


def _declared_team_mismatch(message: str) -> ValidationError:
    return ValidationError(message, details=[{"field": "payload.team_id",
                                              "message": "does not match"}])


async def _without_installation(satellite: SatelliteRow, payload: Any) -> CommandTarget:
    declared = payload.get("team_id") if isinstance(payload, dict) else None
    satellite_team: str | None = satellite.team_id  # type: ignore[attr-defined]
    if declared is None:
        return CommandTarget(satellite, None, payload)
    if satellite.satellite_type is SatelliteType.TEAM:
        if declared != satellite_team:
            raise _declared_team_mismatch("payload.team_id is not the satellite's team")
        return CommandTarget(satellite, None, payload)
    # A global administrator addressing a team's part of a global satellite.
    if not isinstance(declared, str) or not await Team.exists(id=declared):
        raise _declared_team_mismatch("payload.team_id names no team")
    return CommandTarget(satellite, declared, payload)


async def _bound_to_installation(
    principal: Principal, satellite: SatelliteRow, command_type: CommandType,
    payload: dict[str, Any], installation_id: str,
) -> CommandTarget:
    installation = await reads.require_installation(principal, installation_id)
    team_id: str = installation.team_id  # type: ignore[attr-defined]
    satellite_team: str | None = satellite.team_id  # type: ignore[attr-defined]
    if satellite.satellite_type is SatelliteType.TEAM and team_id != satellite_team:
        raise ValidationError("The installation belongs to another team than the satellite",
                              details=[{"field": "payload.installation_id",
                                        "message": "not served by this satellite"}])
    if not principal.is_team_admin(team_id):
        raise Forbidden("Only the installation's team administrators may send it commands")
    pinned: str | None = installation.pinned_satellite_id  # type: ignore[attr-defined]
    if pinned is not None and pinned != satellite.id:
        raise ValidationError("The installation is pinned to another satellite",
                              details=[{"field": "payload.installation_id",
                                        "message": "not served by this satellite"}])
    declared = payload.get("team_id")
    if declared is not None and declared != team_id:
        raise _declared_team_mismatch("payload.team_id is not the installation's team")
    bound = {**payload, "team_id": team_id}
    if command_type in _PROCESS_COMMANDS:
        bound["server_name"] = await _server_name(installation)
        declared_name = payload.get("server_name")
        if declared_name is not None and declared_name != bound["server_name"]:
            raise ValidationError("payload.server_name is not the installation's process",
                                  details=[{"field": "payload.server_name",
                                            "message": "does not match"}])
    return CommandTarget(satellite, team_id, bound)


async def _server_name(installation: McpInstallation) -> str:
    """The process id the satellite runs the installation under (docs/protocol.md §9)."""
    team = await Team.get(id=installation.team_id)  # type: ignore[attr-defined]
    server = await McpServer.get(id=installation.server_id)  # type: ignore[attr-defined]
    return process_id(server.slug, team.slug, installation.id)


# ---- MCP installations ------------------------------------------------------------------


async def require_installer(principal: Principal, team_id: str,
                            pinned_satellite_id: str | None = None) -> Team:
    """A team the caller may install servers for (its admins); a pin must name a
    satellite the caller can see (NOT_FOUND otherwise, like a missing one)."""
    team = await require_team_admin(principal, team_id)
    if pinned_satellite_id is not None:
        await reads.require_satellite(principal, pinned_satellite_id)
    return team


async def require_installation_user(principal: Principal, installation_id: str
                                    ) -> McpInstallation:
    """An installation whose team the caller belongs to: any member may set their own
    user-level config for it (docs/graphql.md §2)."""
    return await reads.require_installation(principal, installation_id)


__all__ = [
    "require_installation_user",
    "require_installer",
    "CommandTarget",
    "require_command_sender",
    "require_token_admin",
    "require_token_issuer",
    "require_command_owner",
    "require_global_admin",
    "require_installation_admin",
    "require_satellite_admin",
    "require_team_admin",
]
