"""What the rest of the system sees of a command: its `command.updated` bus message,
its wire form in a poll answer, the status groups, and the publishing helpers every
queue operation ends with (docs/protocol.md §7, §8).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from app.bus import Channels
from app.models import SatelliteCommand
from app.models.enums import CommandStatus
from app.services.common.clock import iso

if TYPE_CHECKING:
    from app.services.fleet.context import FleetContext

IN_FLIGHT = (CommandStatus.ACKNOWLEDGED, CommandStatus.EXECUTING)
OPEN = (CommandStatus.PENDING, *IN_FLIGHT)


def satellite_id_of(command: SatelliteCommand) -> str:
    return str(command.satellite_id)  # type: ignore[attr-defined]


def team_id_of(command: SatelliteCommand) -> str | None:
    team_id = command.team_id  # type: ignore[attr-defined]
    return None if team_id is None else str(team_id)


def command_message(command: SatelliteCommand) -> dict[str, Any]:
    """The `command.updated` bus message for a command's current state."""
    return {
        "command_id": command.id,
        "satellite_id": satellite_id_of(command),
        "team_id": team_id_of(command),
        "status": str(command.status),
        "command_type": str(command.command_type),
        "priority": str(command.priority),
        "updated_at": iso(command.updated_at),
    }


def wire_command(command: SatelliteCommand) -> dict[str, Any]:
    """A delivered command as the poll answer lists it (docs/protocol.md §7, Response)."""
    return {
        "id": command.id,
        "command_type": str(command.command_type),
        "priority": str(command.priority),
        "payload": command.payload,
        "correlation_id": command.correlation_id,
        "attempt": command.attempts,
        "lease_expires_at": iso(command.lease_expires_at),
        "created_at": iso(command.created_at),
    }


async def publish_updates(rt: FleetContext, commands: Iterable[SatelliteCommand]) -> None:
    """Publish `command.updated` for each command (after its change is written)."""
    for command in commands:
        await rt.bus.publish(Channels.COMMAND_UPDATED, command_message(command))


async def announce_pending(rt: FleetContext, satellite_ids: Iterable[str]) -> None:
    """Mark the satellites as having pending work and wake their long polls."""
    for satellite_id in set(satellite_ids):
        rt.fleet.mark_pending(satellite_id)
        await rt.bus.publish(Channels.COMMANDS_PENDING, {"satellite_id": satellite_id})


__all__ = [
    "IN_FLIGHT",
    "OPEN",
    "announce_pending",
    "command_message",
    "publish_updates",
    "satellite_id_of",
    "team_id_of",
    "wire_command",
]
