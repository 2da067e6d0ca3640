"""Telling satellites their configuration changed: `configure` commands
(docs/protocol.md §9, Configure fan-out).

Any change that alters a satellite's rendered config enqueues one `configure`
command (priority `immediate`) for each affected satellite, de-duplicated while
one is still pending (not yet delivered) for it: the client re-fetches the whole
config on each, so a second undelivered one would only make it fetch twice.

Who is affected is decided here, once, for every kind of change:

- an installation: the satellites that serve it (`serving_satellite_ids`), before
  and after the change (a moved pin affects both sides);
- a catalogue template: the serving satellites of every installation of it;
- a team's slug or limits: the global satellites and the team's own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from tortoise.expressions import Q

from app.models import McpInstallation, Satellite, SatelliteCommand
from app.models.enums import CommandPriority, CommandStatus, CommandType, SatelliteStatus
from app.models.enums import SatelliteType as Kind
from app.services.commands.queue import enqueue_command
from app.services.common.actors import SYSTEM_ACTOR

if TYPE_CHECKING:
    from app.services.fleet.context import FleetContext

log = logging.getLogger(__name__)

INSTALLATION_CREATED = "mcp_installation_created"
INSTALLATION_UPDATED = "mcp_installation_updated"
INSTALLATION_DELETED = "mcp_installation_deleted"


def _live() -> Q:
    return ~Q(status=SatelliteStatus.DELETED)


async def serving_satellite_ids(team_id: str, pinned_satellite_id: str | None) -> set[str]:
    """The live satellites whose config holds an installation of `team_id`.

    The global satellites and the team's own; with a pin, only the pinned one
    (when it may serve the team at all).
    """
    query = Satellite.filter(_live()).filter(Q(satellite_type=Kind.GLOBAL) | Q(team_id=team_id))
    if pinned_satellite_id is not None:
        query = query.filter(id=pinned_satellite_id)
    ids: list[str] = await query.values_list("id", flat=True)  # type: ignore[assignment]
    return set(ids)


async def team_satellite_ids(team_id: str) -> set[str]:
    """Satellites whose config shows something of the team besides installations (limits)."""
    return await serving_satellite_ids(team_id, None)


async def push_configure(
    rt: FleetContext,
    satellite_ids: Iterable[str],
    *,
    event: str,
    installation_id: str | None,
    team_id: str | None,
) -> list[str]:
    """Enqueue one `configure` for each satellite that has none pending; returns those ids.

    The payload is what the reference client reads: `{event, installation_id,
    team_id}`. Satellites deleted in the meantime are skipped.
    """
    wanted = set(satellite_ids)
    if not wanted:
        return []
    pending = set(await SatelliteCommand.filter(
        satellite_id__in=wanted,
        command_type=CommandType.CONFIGURE,
        status=CommandStatus.PENDING,
    ).values_list("satellite_id", flat=True))
    live = set(await Satellite.filter(_live(), id__in=wanted).values_list("id", flat=True))
    targets = sorted((wanted & live) - pending)
    payload = {"event": event, "installation_id": installation_id, "team_id": team_id}
    for satellite_id in targets:
        await enqueue_command(
            rt,
            satellite_id=satellite_id,
            command_type=CommandType.CONFIGURE,
            priority=CommandPriority.IMMEDIATE,
            payload=payload,
            actor=SYSTEM_ACTOR,
            team_id=team_id,
        )
    if targets:
        log.info("configure enqueued", extra={
            "op": "config.push", "event": event, "installation_id": installation_id,
            "satellites": len(targets), "already_pending": len(wanted & pending),
        })
    return targets


async def push_for_servers(rt: FleetContext, server_ids: Iterable[str]) -> list[str]:
    """After catalogue templates changed: configure every satellite serving an installation."""
    ids = list(server_ids)
    if not ids:
        return []
    rows = await McpInstallation.filter(server_id__in=ids).values_list(
        "id", "team_id", "pinned_satellite_id"
    )
    pushed: list[str] = []
    for installation_id, team_id, pinned in rows:
        targets = await serving_satellite_ids(team_id, pinned)
        pushed += await push_configure(
            rt, targets, event=INSTALLATION_UPDATED, installation_id=installation_id,
            team_id=team_id,
        )
    return pushed


async def push_for_team(rt: FleetContext, team_id: str) -> list[str]:
    """After a team's slug or limits changed: its satellites and the global ones."""
    return await push_configure(
        rt, await team_satellite_ids(team_id), event=INSTALLATION_UPDATED,
        installation_id=None, team_id=team_id,
    )


__all__ = [
    "INSTALLATION_CREATED",
    "INSTALLATION_DELETED",
    "INSTALLATION_UPDATED",
    "push_configure",
    "push_for_servers",
    "push_for_team",
    "serving_satellite_ids",
    "team_satellite_ids",
]
