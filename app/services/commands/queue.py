"""Putting commands on a satellite's queue and taking them off it: `enqueue_command`,
`cancel_command` and `cancel_open_commands` (docs/protocol.md §7; defect 5 of §12).

The queue as a whole (claims, results, sweeps) is described in this package's
modules; a command is delivered at most once per lease and at least once overall
(docs/protocol.md §1, Delivery semantics). Every change is published on
`command.updated` after it is written.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from app.errors import Conflict, NotFound, ValidationError
from app.models import Satellite, SatelliteCommand
from app.models.enums import (
    ActorType,
    CommandPriority,
    CommandStatus,
    CommandType,
    SatelliteStatus,
)
from app.services.commands.messages import (
    OPEN,
    announce_pending,
    publish_updates,
    satellite_id_of,
    team_id_of,
)
from app.services.common.actors import Actor
from app.services.common.audit import record_audit
from app.services.common.json_objects import checked_json_object

if TYPE_CHECKING:
    from app.services.fleet.context import FleetContext

MAX_EXPIRES_IN_SECONDS = 86_400
MAX_PAYLOAD_BYTES = 64 * 1024
MAX_ATTEMPTS_LIMIT = 100

_AUDITED_ACTORS = (ActorType.USER, ActorType.CLI)


def _checked_payload(payload: Any) -> dict[str, Any]:
    if payload is None:
        return {}
    return checked_json_object(payload, what="Command payload", field="payload",
                               max_bytes=MAX_PAYLOAD_BYTES)


async def enqueue_command(
    rt: FleetContext,
    *,
    satellite_id: str,
    command_type: CommandType,
    priority: CommandPriority = CommandPriority.NORMAL,
    payload: dict[str, Any] | None = None,
    expires_in_seconds: int | None = None,
    actor: Actor,
    team_id: str | None = None,
    max_attempts: int | None = None,
) -> SatelliteCommand:
    """Queue a command for a live satellite and wake its long polls.

    The satellite must exist and not be deleted (404). `expires_in_seconds` is
    1–86400 (default: settings), `max_attempts` 1–100 (default: settings), the
    payload a JSON object of at most 64 KiB (400). The team defaults to the
    satellite's team. User and CLI actions are audited.
    """
    try:
        command_type = CommandType(command_type)
        priority = CommandPriority(priority)
    except ValueError as error:
        raise ValidationError(str(error)) from error
    expires_in = rt.settings.command_expiry_seconds if expires_in_seconds is None else (
        expires_in_seconds
    )
    if not isinstance(expires_in, int) or not 1 <= expires_in <= MAX_EXPIRES_IN_SECONDS:
        raise ValidationError(
            f"expires_in_seconds must be an integer from 1 to {MAX_EXPIRES_IN_SECONDS}"
        )
    attempts = rt.settings.command_max_attempts if max_attempts is None else max_attempts
    if not isinstance(attempts, int) or not 1 <= attempts <= MAX_ATTEMPTS_LIMIT:
        raise ValidationError(f"max_attempts must be an integer from 1 to {MAX_ATTEMPTS_LIMIT}")
    body = _checked_payload(payload)
    satellite = await Satellite.get_or_none(id=satellite_id)
    if satellite is None or satellite.status is SatelliteStatus.DELETED:
        raise NotFound("Satellite not found", code="satellite_not_found")
    now = rt.clock.now()
    command = await SatelliteCommand.create(
        satellite_id=satellite.id,
        team_id=team_id if team_id is not None else satellite.team_id,  # type: ignore[attr-defined]
        command_type=command_type,
        priority=priority,
        priority_rank=priority.rank,
        payload=body,
        max_attempts=attempts,
        expires_at=now + timedelta(seconds=expires_in),
        created_by_id=actor.user_id if actor.type is ActorType.USER else None,
    )
    rt.metrics.commands_created.inc()
    if actor.type in _AUDITED_ACTORS:
        await record_audit(
            "command.created",
            actor=actor,
            object_type="satellite_command",
            object_id=command.id,
            team_id=team_id_of(command),
            details={
                "satellite_id": satellite.id,
                "command_type": str(command_type),
                "priority": str(priority),
            },
        )
    await announce_pending(rt, [satellite.id])
    await publish_updates(rt, [command])
    return command


async def cancel_command(rt: FleetContext, command_id: str, *, actor: Actor) -> SatelliteCommand:
    """Cancel a command that has not ended (409 `invalid_transition` once it has)."""
    now = rt.clock.now()
    changed = await SatelliteCommand.filter(id=command_id, status__in=OPEN).update(
        status=CommandStatus.CANCELLED, lease_expires_at=None, completed_at=now, updated_at=now
    )
    command = await SatelliteCommand.get_or_none(id=command_id)
    if command is None:
        raise NotFound("Command not found", code="command_not_found")
    if not changed:
        raise Conflict(f"Command already ended ({command.status})", code="invalid_transition")
    if actor.type in _AUDITED_ACTORS:
        await record_audit(
            "command.cancelled",
            actor=actor,
            object_type="satellite_command",
            object_id=command.id,
            team_id=team_id_of(command),
            details={"satellite_id": satellite_id_of(command)},
        )
    await publish_updates(rt, [command])
    return command


async def cancel_open_commands(rt: FleetContext, satellite_id: str, reason: str) -> int:
    """Cancel every command of a satellite that has not ended (the satellite was deleted)."""
    now = rt.clock.now()
    open_ids = await SatelliteCommand.filter(
        satellite_id=satellite_id, status__in=OPEN
    ).values_list("id", flat=True)
    if not open_ids:
        return 0
    changed = await SatelliteCommand.filter(id__in=list(open_ids), status__in=OPEN).update(
        status=CommandStatus.CANCELLED, lease_expires_at=None, completed_at=now,
        updated_at=now, error_message=reason,
    )
    await publish_updates(rt, await SatelliteCommand.filter(id__in=list(open_ids)))
    return changed


__all__ = [
    "MAX_ATTEMPTS_LIMIT",
    "MAX_EXPIRES_IN_SECONDS",
    "MAX_PAYLOAD_BYTES",
    "cancel_command",
    "cancel_open_commands",
    "enqueue_command",
]
