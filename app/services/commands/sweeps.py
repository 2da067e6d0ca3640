"""The periodic jobs of the command queue: `requeue_expired_leases` (lapsed leases)
and `expire_undelivered` (pending past expiry), and the pending-commands gauge they
keep current (docs/protocol.md §7, Rules).

Both are bulk conditional UPDATEs in batches, idempotent and safe next to other
writers (a concurrent claim or result, the CLI).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from tortoise.queryset import QuerySet

from app.models import SatelliteCommand
from app.models.enums import CommandStatus
from app.services.commands.messages import (
    IN_FLIGHT,
    announce_pending,
    publish_updates,
    satellite_id_of,
)

if TYPE_CHECKING:
    from app.services.fleet.context import FleetContext

# Rows handled per job statement; a job run loops until a batch comes back short.
_JOB_BATCH = 500


@dataclass(frozen=True, slots=True)
class LeaseSweep:
    requeued: int = 0
    failed: int = 0
    expired: int = 0


def _attempts_text(count: int) -> str:
    return f"{count} attempt" if count == 1 else f"{count} attempts"


def _lapsed(ids: Sequence[str], now: datetime) -> QuerySet[SatelliteCommand]:
    """Still in flight with a lapsed lease (a claim or result since our read excludes it)."""
    return SatelliteCommand.filter(id__in=ids, status__in=IN_FLIGHT, lease_expires_at__lt=now)


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
            SatelliteCommand.filter(status__in=IN_FLIGHT, lease_expires_at__lt=now)
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
    await publish_updates(rt, changed)
    await announce_pending(
        rt,
        [satellite_id_of(command) for command in changed
         if command.status is CommandStatus.PENDING],
    )


async def _update_queue_depth(rt: FleetContext) -> None:
    rt.metrics.queue_depth.set(await SatelliteCommand.filter(status=CommandStatus.PENDING).count())


__all__ = [
    "LeaseSweep",
    "expire_undelivered",
    "requeue_expired_leases",
]
