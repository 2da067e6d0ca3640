"""Catalogue, installations and usage: permission check → service → type.

Every mutation checks the caller's right first (`services.permissions`, NOT_FOUND
for what the caller cannot see), then hands the arguments to the service that
validates them; the result is re-read through the scope.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON

from app.schema.context import Info, principal_of
from app.schema.types.mcp import Installation, McpServer, McpServerInput, UsageSummary
from app.services.mcp import catalog, installations
from app.services.mcp.installations import UNSET, InstallationChange
from app.services.people import permissions, reads
from app.services.people.principals import Principal
from app.services.telemetry.usage import team_usage


def _checked_later(value: JSON | None) -> Any:
    """A JSON argument as given: the service checks it (objects of strings, settings)."""
    return value


async def _shown(principal: Principal, installation_id: str) -> Installation:
    return Installation.of(await reads.require_installation(principal, installation_id))


async def mcp_servers(info: Info) -> list[McpServer]:
    principal_of(info)
    return [McpServer.of(row) for row in await catalog.list_servers()]


async def installations_of_team(info: Info, team_id: strawberry.ID) -> list[Installation]:
    principal = principal_of(info)
    await reads.require_team(principal, team_id)
    return [Installation.of(row)
            for row in await reads.installations(principal, team_id=team_id)]


async def installation(info: Info, id: strawberry.ID) -> Installation | None:  # noqa: A002
    row = await reads.installation(principal_of(info), id)
    return None if row is None else Installation.of(row)


async def usage(
    info: Info, team_id: strawberry.ID,
    from_: Annotated[datetime | None, strawberry.argument(name="from")] = None,
    to: datetime | None = None,
) -> UsageSummary:
    summary = await team_usage(principal_of(info), team_id, start=from_, end=to,
                               now=info.context.rt.clock.now())
    return UsageSummary.of(summary)


async def create_mcp_server(info: Info, input: McpServerInput) -> McpServer:  # noqa: A002
    principal = principal_of(info)
    permissions.require_global_admin(principal)
    row = await catalog.save_server(info.context.rt, input.to_catalog(), server_id=None,
                                    actor=principal.actor)
    return McpServer.of(row)


async def update_mcp_server(info: Info, id: strawberry.ID,  # noqa: A002
                            input: McpServerInput) -> McpServer:  # noqa: A002
    principal = principal_of(info)
    permissions.require_global_admin(principal)
    row = await catalog.save_server(info.context.rt, input.to_catalog(), server_id=id,
                                    actor=principal.actor)
    return McpServer.of(row)


async def install_mcp_server(
    info: Info, team_id: strawberry.ID, server_id: strawberry.ID, name: str | None = None,
    args: list[str] | None = None, env: JSON | None = None, headers: JSON | None = None,
    pinned_satellite_id: strawberry.ID | None = None,
) -> Installation:
    principal = principal_of(info)
    await permissions.require_installer(principal, team_id, pinned_satellite_id)
    change = InstallationChange(
        name=name, args=args, env=_checked_later(env), headers=_checked_later(headers),
        pinned_satellite_id=UNSET if pinned_satellite_id is None else pinned_satellite_id,
    )
    row = await installations.install_server(info.context.rt, team_id=team_id,
                                             server_id=server_id, change=change,
                                             actor=principal.actor)
    return await _shown(principal, row.id)


async def update_installation(
    info: Info, id: strawberry.ID, name: str | None = None,  # noqa: A002
    args: list[str] | None = None, env: JSON | None = None, headers: JSON | None = None,
    settings: JSON | None = None,
) -> Installation:
    principal = principal_of(info)
    await permissions.require_installation_admin(principal, id)
    change = InstallationChange(name=name, args=args, env=_checked_later(env),
                                headers=_checked_later(headers),
                                settings=_checked_later(settings))
    await installations.update_installation(info.context.rt, id, change, actor=principal.actor)
    return await _shown(principal, id)


async def delete_installation(info: Info, id: strawberry.ID) -> bool:  # noqa: A002
    principal = principal_of(info)
    await permissions.require_installation_admin(principal, id)
    await installations.delete_installation(info.context.rt, id, actor=principal.actor)
    return True


async def set_user_config(
    info: Info, installation_id: strawberry.ID, args: list[str] | None = None,
    env: JSON | None = None, headers: JSON | None = None,
) -> Installation:
    principal = principal_of(info)
    await permissions.require_installation_user(principal, installation_id)
    values: dict[str, Any] = {"args": args, "env": env, "headers": headers}
    await installations.set_user_config(info.context.rt, installation_id,
                                        user_id=principal.user_id, values=values,
                                        actor=principal.actor)
    return await _shown(principal, installation_id)


async def rollback_installation(info: Info, id: strawberry.ID,  # noqa: A002
                                revision: int) -> Installation:
    principal = principal_of(info)
    await permissions.require_installation_admin(principal, id)
    await installations.rollback_installation(info.context.rt, id, revision,
                                              actor=principal.actor)
    return await _shown(principal, id)


__all__ = [
    "create_mcp_server",
    "delete_installation",
    "install_mcp_server",
    "installation",
    "installations_of_team",
    "mcp_servers",
    "rollback_installation",
    "set_user_config",
    "update_installation",
    "update_mcp_server",
    "usage",
]
