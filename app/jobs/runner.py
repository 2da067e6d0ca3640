"""Periodic jobs, each idempotent, run inside the server.

Each job module exposes `async def run_once(rt) -> None`; this runner calls the
registered jobs on their intervals and logs (never propagates) their failures.
With several instances on one PostgreSQL, only the leader runs them (`leader.py`).
"""

from __future__ import annotations

import asyncio
import logging

from app.jobs.leader import Leadership
from app.jobs.schedule import ScheduledJob
from app.services.context import Services

log = logging.getLogger(__name__)

def scheduled_jobs() -> list[ScheduledJob]:
    """The server's jobs. Each job module registers itself here (one line)."""
    from app.jobs import alerts, offline, retention, sessions
    from app.jobs import commands as command_jobs

    return [
        *command_jobs.JOBS,
        ScheduledJob("offline", offline.run_once, lambda rt: rt.settings.jobs_interval_seconds),
        ScheduledJob("alerts", alerts.run_tick, lambda rt: rt.settings.jobs_interval_seconds),
        ScheduledJob("sessions", sessions.run_once, lambda rt: rt.settings.jobs_interval_seconds),
        ScheduledJob(
            "retention", retention.run_once, lambda rt: rt.settings.retention_interval_seconds
        ),
    ]


async def run_periodically(rt: Services, job: ScheduledJob, leadership: Leadership) -> None:
    while not rt.shutting_down.is_set():
        if leadership.is_leader:
            try:
                await job.run_once(rt)
            except Exception:
                log.exception("job failed", extra={"op": job.name})
        try:
            await asyncio.wait_for(rt.shutting_down.wait(), timeout=job.interval(rt))
        except TimeoutError:
            continue


def start_jobs(rt: Services) -> Leadership:
    """Start every job; they run only while this instance leads (always, on SQLite)."""
    leadership = Leadership(rt.settings)
    rt.tasks.start(leadership.run(rt.shutting_down), name="jobs-leadership")
    for job in scheduled_jobs():
        rt.tasks.start(run_periodically(rt, job, leadership), name=f"job:{job.name}")
    from app.jobs.alerts import start_alerts

    start_alerts(rt, leadership)
    return leadership
