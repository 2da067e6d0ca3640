"""The per-satellite command queue (protocol.md §7, §8; defect 5 of §12).

Delivery semantics: a command is delivered at most once per lease and at least
once overall; its terminal result is recorded once.

- `enqueue_command` writes a `pending` row and wakes the satellite's long polls.
- `poll_commands` claims pending commands in priority order: on PostgreSQL the
  rows are locked with `SELECT … FOR UPDATE SKIP LOCKED` and claimed in one
  transaction; on SQLite (no row locks) each with one conditional UPDATE
  (`... WHERE status = 'pending'`). Either way concurrent polls, even from
  several processes or instances, never hand one command out twice within a
  lease. An idle poll is answered from memory (the fleet's pending-work flag).
- `record_command_result` applies the satellite's report with a conditional
  UPDATE on the status it read; late results are kept.
- `requeue_expired_leases` / `expire_undelivered` are the periodic jobs: bulk
  conditional UPDATEs, idempotent and safe next to other writers (the CLI).

Every change is published on `command.updated` after it is written.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from tortoise.expressions import F
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from app.bus import Channels
from app.errors import Conflict, NotFound, ValidationError
from app.models import Satellite, SatelliteCommand
from app.models.enums import (
    ActorType,
    CommandPriority,
    CommandStatus,
    CommandType,
    SatelliteStatus,
)
from app.services.common.actors import Actor
from app.services.common.audit import record_audit
from app.services.common.clock import iso
from app.services.common.json_objects import checked_json_object
from app.services.common.storage import is_postgres
from app.services.fleet.state import SatelliteState

if TYPE_CHECKING:
    from app.services.fleet.context import FleetContext

log = logging.getLogger(__name__)

MAX_EXPIRES_IN_SECONDS = 86_400
MAX_PAYLOAD_BYTES = 64 * 1024
MAX_ATTEMPTS_LIMIT = 100
POLL_LIMIT_MAX = 50
LONG_POLL_MAX_SECONDS = 30.0
# Select-and-claim rounds per poll when concurrent polls take the candidates first.
_CLAIM_ROUNDS = 10
# Rows handled per job statement; a job run loops until a batch comes back short.
_JOB_BATCH = 500

_IN_FLIGHT = (CommandStatus.ACKNOWLEDGED, CommandStatus.EXECUTING)
_OPEN = (CommandStatus.PENDING, *_IN_FLIGHT)
# Ends the server decides on its own; a satellite's later terminal report replaces them.
_SERVER_ENDED = (CommandStatus.EXPIRED, CommandStatus.FAILED, CommandStatus.CANCELLED)
_AUDITED_ACTORS = (ActorType.USER, ActorType.CLI)


# ---- shapes -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PollResult:
    commands: list[dict[str, Any]]
    polling_mode: str
    next_poll_interval: int

    def to_wire(self) -> dict[str, Any]:
        return {
            "commands": self.commands,
            "polling_mode": self.polling_mode,
            "next_poll_interval": self.next_poll_interval,
        }


@dataclass(frozen=True, slots=True)
class ResultOutcome:
    status: CommandStatus
    duplicate: bool = False
    late: bool = False


@dataclass(frozen=True, slots=True)
class LeaseSweep:
    requeued: int = 0
    failed: int = 0
    expired: int = 0


def _satellite_id(command: SatelliteCommand) -> str:
    return str(command.satellite_id)  # type: ignore[attr-defined]


def _team_id(command: SatelliteCommand) -> str | None:
    team_id = command.team_id  # type: ignore[attr-defined]
    return None if team_id is None else str(team_id)


def command_message(command: SatelliteCommand) -> dict[str, Any]:
    """The `command.updated` bus message for a command's current state."""
    return {
        "command_id": command.id,
        "satellite_id": _satellite_id(command),
        "team_id": _team_id(command),
        "status": str(command.status),
        "command_type": str(command.command_type),
        "priority": str(command.priority),
        "updated_at": iso(command.updated_at),
    }


def _wire_command(command: SatelliteCommand) -> dict[str, Any]:
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


# polling_mode / next_poll_interval by the best pending priority (the reference values).
_MODE_BY_RANK: dict[int, tuple[str, int]] = {
    CommandPriority.IMMEDIATE.rank: ("immediate", 2),
    CommandPriority.HIGH.rank: ("normal", 10),
    CommandPriority.NORMAL.rank: ("normal", 30),
    CommandPriority.LOW.rank: ("normal", 30),
}
_IDLE_MODE = ("slow", 60)


def _poll_result(commands: list[dict[str, Any]], best_rank: int | None) -> PollResult:
    mode, interval = _IDLE_MODE if best_rank is None else _MODE_BY_RANK[best_rank]
    return PollResult(commands, mode, interval)


async def _publish_updates(rt: FleetContext, commands: Iterable[SatelliteCommand]) -> None:
    for command in commands:
        await rt.bus.publish(Channels.COMMAND_UPDATED, command_message(command))


async def _announce_pending(rt: FleetContext, satellite_ids: Iterable[str]) -> None:
    for satellite_id in set(satellite_ids):
        rt.fleet.mark_pending(satellite_id)
        await rt.bus.publish(Channels.COMMANDS_PENDING, {"satellite_id": satellite_id})


# ---- enqueue ------------------------------------------------------------------


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
    if actor.type in _AUDITED_ACTORS:
        await record_audit(
            "command.created",
            actor=actor,
            object_type="satellite_command",
            object_id=command.id,
            team_id=_team_id(command),
            details={
                "satellite_id": satellite.id,
                "command_type": str(command_type),
                "priority": str(priority),
            },
        )
    await _announce_pending(rt, [satellite.id])
    await _publish_updates(rt, [command])
    return command


# ---- poll ---------------------------------------------------------------------


async def poll_commands(
    rt: FleetContext, state: SatelliteState, *, limit: int, wait: float
) -> PollResult:
    """Deliver up to `limit` pending commands, best priority first, each under a lease.

    Non-active satellites get an empty list. With nothing known to be pending
    and `wait == 0` the answer comes from memory (no database I/O). With
    `wait > 0` (capped at 30 s and the configured maximum) an empty poll is held
    until work is marked pending for this satellite, the wait ends, or the
    server shuts down (then it answers empty).
    """
    limit = max(1, min(limit, POLL_LIMIT_MAX))
    wait = max(0.0, min(float(wait), float(rt.settings.long_poll_max_seconds),
                        LONG_POLL_MAX_SECONDS))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    held = False
    while True:
        # (A deleted satellite's state is dropped from the fleet and its polls released.)
        if state.status is not SatelliteStatus.ACTIVE or rt.fleet.get(state.id) is not state:
            rt.metrics.polls.labels(outcome="inactive").inc()
            return _poll_result([], None)
        if rt.shutting_down.is_set():
            rt.metrics.polls.labels(outcome="shutdown").inc()
            return _poll_result([], None)
        result: PollResult | None = None
        if state.has_pending:
            result = await _claim(rt, state, limit)
            if result.commands:
                rt.metrics.polls.labels(outcome="delivered").inc()
                return result
        remaining = deadline - loop.time()
        if remaining <= 0:
            outcome = "empty" if held or result is not None else "idle"
            rt.metrics.polls.labels(outcome=outcome).inc()
            return result or _poll_result([], None)
        # Clear, then re-check: a mark between our claim and the clear is not lost.
        state.wakeup.clear()
        if state.has_pending or rt.shutting_down.is_set():
            continue
        held = True
        try:
            await asyncio.wait_for(state.wakeup.wait(), timeout=remaining)
        except TimeoutError:
            continue  # the loop answers (remaining <= 0)


async def _claim(rt: FleetContext, state: SatelliteState, limit: int) -> PollResult:
    epoch = state.pending_epoch
    now = rt.clock.now()
    lease_expires_at = now + timedelta(seconds=rt.settings.command_lease_seconds)
    if is_postgres(SatelliteCommand._meta.db):
        claim = await _claim_skip_locked(state.id, now, lease_expires_at, limit)
    else:
        claim = await _claim_conditional(state.id, now, lease_expires_at, limit)
    delivered, left_pending_rank, saw_every_pending_row = claim
    if saw_every_pending_row:
        # Nothing is left unless something was marked pending since `epoch`.
        rt.fleet.clear_pending_if_unchanged(state, epoch)
    for command in delivered:
        if command.attempts == 1:
            latency = (now - command.created_at).total_seconds()
            rt.metrics.delivery_latency.observe(max(0.0, latency))
    await _publish_updates(rt, delivered)
    ranks = [command.priority_rank for command in delivered]
    if left_pending_rank is not None:
        ranks.append(left_pending_rank)
    return _poll_result([_wire_command(command) for command in delivered], min(ranks, default=None))


_Claim = tuple[list[SatelliteCommand], int | None, bool]
"""(commands claimed, rank of a pending command left for later, saw every pending row)."""


def _pending_for(satellite_id: str, now: datetime) -> QuerySet[SatelliteCommand]:
    return SatelliteCommand.filter(
        satellite_id=satellite_id, status=CommandStatus.PENDING, expires_at__gt=now
    ).order_by("priority_rank", "created_at", "id")


def _claimed_fields(now: datetime, lease_expires_at: datetime) -> dict[str, Any]:
    return {"status": CommandStatus.ACKNOWLEDGED, "attempts": F("attempts") + 1,
            "delivered_at": now, "lease_expires_at": lease_expires_at, "updated_at": now}


def _mark_claimed(command: SatelliteCommand, now: datetime, lease_expires_at: datetime) -> None:
    command.status = CommandStatus.ACKNOWLEDGED
    command.attempts += 1
    command.delivered_at = now
    command.lease_expires_at = lease_expires_at
    command.updated_at = now


async def _claim_skip_locked(
    satellite_id: str, now: datetime, lease_expires_at: datetime, limit: int
) -> _Claim:
    """PostgreSQL: lock the best pending rows nobody else holds, claim them, commit.

    `FOR UPDATE SKIP LOCKED` hands concurrent polls (in any instance) disjoint
    rows without waiting on each other; the UPDATE keeps the status condition,
    so a row changed since (cancelled, expired) is never delivered. Only rows
    this poll takes are locked (a locked spare row would hide a deliverable
    command from a concurrent poll); what is left is read without a lock.
    """
    async with in_transaction() as conn:
        taken = await (
            _pending_for(satellite_id, now).limit(limit)
            .select_for_update(skip_locked=True).using_db(conn)
        )
        if taken:
            claimed = await SatelliteCommand.filter(
                id__in=[command.id for command in taken], status=CommandStatus.PENDING
            ).using_db(conn).update(**_claimed_fields(now, lease_expires_at))
            if claimed != len(taken):  # cannot happen while we hold the row locks
                raise RuntimeError("claimed rows changed under their locks")
        # Rows locked by another claimer (whose transaction may yet roll back) still
        # read as pending here: only with none left is the queue empty.
        left = await _pending_for(satellite_id, now).using_db(conn).only(
            "id", "priority_rank").first()
    for command in taken:
        _mark_claimed(command, now, lease_expires_at)
    left_pending_rank = None if left is None else left.priority_rank
    return list(taken), left_pending_rank, left_pending_rank is None


async def _claim_conditional(
    satellite_id: str, now: datetime, lease_expires_at: datetime, limit: int
) -> _Claim:
    """SQLite (no row locks): select candidates, claim each with a conditional UPDATE."""
    delivered: list[SatelliteCommand] = []
    left_pending_rank: int | None = None
    saw_every_pending_row = False
    # A claim lost to a concurrent poll is made up from the next candidates, so a
    # poll never comes back empty while something it could take is still pending.
    # Each lost row was taken by someone else, so the rounds always make progress.
    for _ in range(_CLAIM_ROUNDS):
        wanted = limit - len(delivered)
        candidates = await _pending_for(satellite_id, now).limit(wanted + 1)
        for candidate in candidates:
            if len(delivered) >= limit:
                left_pending_rank = candidate.priority_rank
                break
            if await _claim_one(candidate, now, lease_expires_at):
                delivered.append(candidate)
        if left_pending_rank is not None:
            break  # the page is full and more is waiting
        if len(candidates) <= wanted:
            saw_every_pending_row = True
            break
    return delivered, left_pending_rank, saw_every_pending_row


async def _claim_one(
    candidate: SatelliteCommand, now: datetime, lease_expires_at: datetime
) -> bool:
    """One conditional UPDATE: only the caller that still sees `pending` gets the command."""
    claimed = await SatelliteCommand.filter(
        id=candidate.id, status=CommandStatus.PENDING, expires_at__gt=now
    ).update(**_claimed_fields(now, lease_expires_at))
    if claimed != 1:
        return False  # another poll (maybe in another process) took it
    _mark_claimed(candidate, now, lease_expires_at)
    return True


# ---- results ------------------------------------------------------------------


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
    """Apply a satellite's report on one of its commands (protocol.md §8).

    - The command must belong to the satellite (404 `command_not_found`).
    - pending/acknowledged → executing → completed|failed; steps may be skipped.
    - The same terminal report again is a duplicate (nothing changes); a
      different terminal status after one was reported is 409 `invalid_transition`.
    - Late reports (command expired, failed by lease exhaustion, cancelled, or
      re-queued after its lease) are kept and flagged `late`; the satellite's
      terminal status replaces a server-decided expired/failed, cancelled stays.
    """
    status = CommandStatus(status)
    if status not in (*_IN_FLIGHT, CommandStatus.COMPLETED, CommandStatus.FAILED):
        raise ValidationError(f"A satellite cannot report status {status}")
    lease = timedelta(seconds=rt.settings.command_lease_seconds)
    for _ in range(2):  # retry once if the row changed between our read and write
        command = await SatelliteCommand.get_or_none(id=command_id, satellite_id=state.id)
        if command is None:
            raise NotFound("Command not found for this satellite", code="command_not_found")
        plan = _plan_result(command, status, result, error_message, rt.clock.now(), lease)
        if not plan.changes:
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
            await _publish_updates(rt, [command])
            return plan.outcome
    raise Conflict("The command changed while the result was recorded; retry", code="conflict")


# ---- cancel -------------------------------------------------------------------


async def cancel_command(rt: FleetContext, command_id: str, *, actor: Actor) -> SatelliteCommand:
    """Cancel a command that has not ended (409 `invalid_transition` once it has)."""
    now = rt.clock.now()
    changed = await SatelliteCommand.filter(id=command_id, status__in=_OPEN).update(
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
            team_id=_team_id(command),
            details={"satellite_id": _satellite_id(command)},
        )
    await _publish_updates(rt, [command])
    return command


async def cancel_open_commands(rt: FleetContext, satellite_id: str, reason: str) -> int:
    """Cancel every command of a satellite that has not ended (the satellite was deleted)."""
    now = rt.clock.now()
    open_ids = await SatelliteCommand.filter(
        satellite_id=satellite_id, status__in=_OPEN
    ).values_list("id", flat=True)
    if not open_ids:
        return 0
    changed = await SatelliteCommand.filter(id__in=list(open_ids), status__in=_OPEN).update(
        status=CommandStatus.CANCELLED, lease_expires_at=None, completed_at=now,
        updated_at=now, error_message=reason,
    )
    await _publish_updates(rt, await SatelliteCommand.filter(id__in=list(open_ids)))
    return changed


# ---- jobs ---------------------------------------------------------------------


def _attempts_text(count: int) -> str:
    return f"{count} attempt" if count == 1 else f"{count} attempts"


def _lapsed(ids: Sequence[str], now: datetime) -> QuerySet[SatelliteCommand]:
    """Still in flight with a lapsed lease (a claim or result since our read excludes it)."""
    return SatelliteCommand.filter(id__in=ids, status__in=_IN_FLIGHT, lease_expires_at__lt=now)


async def requeue_expired_leases(rt: FleetContext) -> LeaseSweep:
    """Commands whose lease lapsed without a result: back to `pending` while attempts
    and time remain; `failed` ("lease expired after N attempts") once `max_attempts`
    is used up; `expired` once past `expires_at`.

    Each change is a conditional UPDATE on "still in flight with a lapsed lease",
    so the job is idempotent and a concurrent claim or result wins cleanly.
    """
    requeued = failed = expired = 0
    while True:
        now = rt.clock.now()
        rows = await (
            SatelliteCommand.filter(status__in=_IN_FLIGHT, lease_expires_at__lt=now)
            .order_by("lease_expires_at")
            .limit(_JOB_BATCH)
            .values("id", "attempts", "max_attempts", "expires_at")
        )
        to_requeue: list[str] = []
        to_expire: list[str] = []
        to_fail: defaultdict[int, list[str]] = defaultdict(list)
        for row in rows:
            if row["expires_at"] <= now:
                to_expire.append(row["id"])
            elif row["attempts"] >= row["max_attempts"]:
                to_fail[row["attempts"]].append(row["id"])
            else:
                to_requeue.append(row["id"])

        if to_expire:
            expired += await _lapsed(to_expire, now).update(
                status=CommandStatus.EXPIRED,
                lease_expires_at=None,
                completed_at=now,
                error_message="lease expired after the command's expiry time",
                updated_at=now,
            )
        for attempts, ids in to_fail.items():
            failed += await _lapsed(ids, now).update(
                status=CommandStatus.FAILED,
                lease_expires_at=None,
                completed_at=now,
                error_message=f"lease expired after {_attempts_text(attempts)}",
                updated_at=now,
            )
        if to_requeue:
            requeued += await _lapsed(to_requeue, now).update(
                status=CommandStatus.PENDING, lease_expires_at=None, updated_at=now
            )
        await _announce_changes(rt, [row["id"] for row in rows], now)
        if len(rows) < _JOB_BATCH:
            break
    await _update_queue_depth(rt)
    return LeaseSweep(requeued=requeued, failed=failed, expired=expired)


async def expire_undelivered(rt: FleetContext) -> int:
    """Pending commands past `expires_at` become `expired` (they are never delivered)."""
    total = 0
    while True:
        now = rt.clock.now()
        ids = await (
            SatelliteCommand.filter(status=CommandStatus.PENDING, expires_at__lte=now)
            .limit(_JOB_BATCH)
            .values_list("id", flat=True)
        )
        if ids:
            total += await SatelliteCommand.filter(
                id__in=ids, status=CommandStatus.PENDING, expires_at__lte=now
            ).update(
                status=CommandStatus.EXPIRED,
                completed_at=now,
                error_message="not delivered before it expired",
                updated_at=now,
            )
            await _announce_changes(rt, [str(command_id) for command_id in ids], now)
        if len(ids) < _JOB_BATCH:
            break
    await _update_queue_depth(rt)
    return total


async def _announce_changes(rt: FleetContext, ids: Sequence[str], changed_at: datetime) -> None:
    """Publish the rows this job changed (re-read: a concurrent writer may have won)."""
    if not ids:
        return
    changed = await SatelliteCommand.filter(id__in=ids, updated_at=changed_at)
    await _publish_updates(rt, changed)
    await _announce_pending(
        rt,
        [_satellite_id(command) for command in changed if command.status is CommandStatus.PENDING],
    )


async def _update_queue_depth(rt: FleetContext) -> None:
    rt.metrics.queue_depth.set(await SatelliteCommand.filter(status=CommandStatus.PENDING).count())


__all__ = [
    "LeaseSweep",
    "PollResult",
    "ResultOutcome",
    "cancel_command",
    "command_message",
    "enqueue_command",
    "expire_undelivered",
    "poll_commands",
    "record_command_result",
    "requeue_expired_leases",
]
