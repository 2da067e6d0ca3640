"""Delivering commands to a polling satellite: `poll_commands` and the claims that put
each delivered command under a lease (docs/protocol.md §7, Rules; defect 5 of §12).

Pending commands are claimed in priority order, then by age: on PostgreSQL the rows
are locked with `SELECT … FOR UPDATE SKIP LOCKED` and claimed in one transaction; on
SQLite (no row locks) each with one conditional UPDATE (`... WHERE status =
'pending'`). Either way concurrent polls, even from several processes or instances,
never hand one command out twice within a lease. An idle poll is answered from
memory (the fleet's pending-work flag).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from tortoise.expressions import F
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from app.models import SatelliteCommand
from app.models.enums import CommandPriority, CommandStatus, SatelliteStatus
from app.services.commands.messages import publish_updates, wire_command
from app.services.common.storage import is_postgres
from app.services.fleet.state import SatelliteState

if TYPE_CHECKING:
    from app.services.fleet.context import FleetContext

POLL_LIMIT_MAX = 50
LONG_POLL_MAX_SECONDS = 30.0
# Select-and-claim rounds per poll when concurrent polls take the candidates first.
_CLAIM_ROUNDS = 10


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
        if state.has_pending or rt.shutting_down.is_set():
            continue  # marked, or stopping, while the claim ran
        held = True
        rt.metrics.held_polls.inc()
        try:
            # No await between the checks above and registering: no mark is missed.
            await state.wakeup.wait(rt.fleet.poll_timers, deadline)
        finally:
            rt.metrics.held_polls.dec()


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
    if delivered:
        rt.metrics.commands_delivered.inc(len(delivered))
    for command in delivered:
        if command.attempts == 1:
            latency = (now - command.created_at).total_seconds()
            rt.metrics.delivery_latency.observe(max(0.0, latency))
    await publish_updates(rt, delivered)
    ranks = [command.priority_rank for command in delivered]
    if left_pending_rank is not None:
        ranks.append(left_pending_rank)
    return _poll_result([wire_command(command) for command in delivered], min(ranks, default=None))


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


__all__ = [
    "LONG_POLL_MAX_SECONDS",
    "POLL_LIMIT_MAX",
    "PollResult",
    "poll_commands",
]
