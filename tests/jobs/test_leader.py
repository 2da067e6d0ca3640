"""One leader runs the background jobs; another takes over when it goes (issue 5).

Needs PostgreSQL (TEST_DATABASE_URL); on SQLite the one server process always leads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from app.jobs.leader import Leadership
from tests.fixtures.server import make_settings, postgres_only


@pytest.mark.sqlite_only(reason="on PostgreSQL leading takes the advisory lock (next test)")
async def test_on_sqlite_the_only_instance_leads(tmp_path: Path) -> None:
    leadership = Leadership(make_settings(tmp_path))
    assert leadership.is_leader
    stop = asyncio.Event()
    stop.set()
    await leadership.run(stop)
    assert leadership.is_leader


@postgres_only
async def test_one_instance_leads_and_another_takes_over(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, jobs_interval_seconds=0.05)  # the test's own database
    first, second = Leadership(settings), Leadership(settings)
    stop_first, stop_second = asyncio.Event(), asyncio.Event()
    runs = [asyncio.create_task(first.run(stop_first))]
    await _until(lambda: first.is_leader)
    attempts = _count_attempts(second)
    runs.append(asyncio.create_task(second.run(stop_second)))
    await _until(lambda: attempts[0] >= 3)  # the second has tried, more than once, and...
    assert (first.is_leader, second.is_leader) == (True, False)  # ...the first still leads

    stop_first.set()  # the leader goes away: its connection closes, the lock is freed
    await runs[0]
    await _until(lambda: second.is_leader)

    stop_second.set()
    await runs[1]
    assert not second.is_leader


def _count_attempts(leadership: Leadership) -> list[int]:
    """Count the instance's finished attempts to lead (in a one-element list)."""
    attempts = [0]
    attempt = leadership._attempt

    async def counted() -> None:
        await attempt()
        attempts[0] += 1

    leadership._attempt = counted  # type: ignore[method-assign]
    return attempts


async def _until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)
