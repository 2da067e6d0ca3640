"""A satellite's reports on its commands: `record_command_result`, planned by
`_plan_result` and applied with a conditional UPDATE on the status it read
(docs/protocol.md §8, Transitions). Late results are kept; a command's terminal
result is recorded once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from app.errors import Conflict, NotFound, ValidationError
from app.models import SatelliteCommand
from app.models.enums import CommandStatus
from app.services.commands.messages import IN_FLIGHT, publish_updates
from app.services.fleet.state import SatelliteState

if TYPE_CHECKING:
    from app.services.fleet.context import FleetContext

# Ends the server decides on its own; a satellite's later terminal report replaces them.
_SERVER_ENDED = (CommandStatus.EXPIRED, CommandStatus.FAILED, CommandStatus.CANCELLED)


@dataclass(frozen=True, slots=True)
class ResultOutcome:
    status: CommandStatus
    duplicate: bool = False
    late: bool = False


@dataclass(frozen=True, slots=True)
class _Plan:
    outcome: ResultOutcome
    changes: dict[str, Any]


def _plan_result(
    command: SatelliteCommand,
    reported: CommandStatus,
    result: dict[str, Any] | None,
    error_message: str | None,
    now: datetime,
    lease: timedelta,
) -> _Plan:
    current = command.status
    # `completed` is only ever set from a satellite report.
    already_reported = command.reported_status or (
        CommandStatus.COMPLETED if current is CommandStatus.COMPLETED else None
    )
    requeued = current is CommandStatus.PENDING and command.attempts > 0
    if reported.is_terminal:
        if already_reported is not None:
            if reported is already_reported:
                return _Plan(ResultOutcome(current, duplicate=True), {})
            raise Conflict(
                f"Command already reported {already_reported}; cannot change it to {reported}",
                code="invalid_transition",
            )
        late = current in _SERVER_ENDED or requeued
        new_status = current if current is CommandStatus.CANCELLED else reported
        changes: dict[str, Any] = {
            "status": new_status,
            "reported_status": reported,
            "result": result,
            "error_message": error_message,
            "lease_expires_at": None,
            "late": late,
            "updated_at": now,
        }
        if current is not CommandStatus.CANCELLED:
            changes["completed_at"] = now
        return _Plan(ResultOutcome(new_status, late=late), changes)
    # acknowledged / executing: progress reports
    if already_reported is not None:
        raise Conflict(
            f"Command already reported {already_reported}; cannot move it to {reported}",
            code="invalid_transition",
        )
    if current.is_terminal:  # ended by the server: keep the report, not the status
        changes = {"late": True, "updated_at": now}
        if result is not None:
            changes["result"] = result
        return _Plan(ResultOutcome(current, late=True), changes)
    if current is CommandStatus.EXECUTING and reported is CommandStatus.ACKNOWLEDGED:
        raise Conflict("Command is already executing", code="invalid_transition")
    # A progress report renews the lease, so a working satellite is not redelivered to.
    changes = {
        "status": reported,
        "lease_expires_at": now + lease,
        "delivered_at": command.delivered_at or now,
        "late": requeued,
        "updated_at": now,
    }
    if result is not None:
        changes["result"] = result
    if error_message is not None:
        changes["error_message"] = error_message
    return _Plan(ResultOutcome(reported, late=requeued), changes)


async def record_command_result(
    rt: FleetContext,
    state: SatelliteState,
    *,
    command_id: str,
    status: CommandStatus,
    result: dict[str, Any] | None,
    error_message: str | None,
) -> ResultOutcome:
    """Apply a satellite's report on one of its commands (docs/protocol.md §8).

    - The command must belong to the satellite (404 `command_not_found`).
    - pending/acknowledged → executing → completed|failed; steps may be skipped.
    - The same terminal report again is a duplicate (nothing changes); a
      different terminal status after one was reported is 409 `invalid_transition`.
    - Late reports (command expired, failed by lease exhaustion, cancelled, or
      re-queued after its lease) are kept and flagged `late`; the satellite's
      terminal status replaces a server-decided expired/failed, cancelled stays.
    """
    status = CommandStatus(status)
    if status not in (*IN_FLIGHT, CommandStatus.COMPLETED, CommandStatus.FAILED):
        raise ValidationError(f"A satellite cannot report status {status}")
    lease = timedelta(seconds=rt.settings.command_lease_seconds)
    for _ in range(2):  # retry once if the row changed between our read and write
        command = await SatelliteCommand.get_or_none(id=command_id, satellite_id=state.id)
        if command is None:
            raise NotFound("Command not found", code="command_not_found")
        plan = _plan_result(command, status, result, error_message, rt.clock.now(), lease)
        if not plan.changes:
            rt.metrics.command_results.labels(
                outcome="duplicate" if plan.outcome.duplicate else status.value).inc()
            return plan.outcome
        query = SatelliteCommand.filter(id=command.id, status=command.status)
        previously_reported: CommandStatus | None = command.reported_status
        if previously_reported is None:
            query = query.filter(reported_status__isnull=True)
        else:
            query = query.filter(reported_status=previously_reported)
        if await query.update(**plan.changes) == 1:
            for name, value in plan.changes.items():
                setattr(command, name, value)
            await publish_updates(rt, [command])
            rt.metrics.command_results.labels(outcome=status.value).inc()
            return plan.outcome
    raise Conflict("The command changed while the result was recorded; retry", code="conflict")


__all__ = [
    "ResultOutcome",
    "record_command_result",
]
