"""Command queue housekeeping: lapsed leases and undelivered commands past their expiry."""

from __future__ import annotations

from app.jobs.schedule import ScheduledJob
from app.services.commands.sweeps import expire_undelivered, requeue_expired_leases
from app.services.context import Services


async def run_lease_sweep(rt: Services) -> None:
    await requeue_expired_leases(rt)


async def run_expiry_sweep(rt: Services) -> None:
    await expire_undelivered(rt)


def _every_jobs_interval(rt: Services) -> float:
    return rt.settings.jobs_interval_seconds


JOBS: tuple[ScheduledJob, ...] = (
    ScheduledJob("commands.requeue_expired_leases", run_lease_sweep, _every_jobs_interval),
    ScheduledJob("commands.expire_undelivered", run_expiry_sweep, _every_jobs_interval),
)
