"""Held long polls wake on news or at their deadline (one timer per deadline bucket)."""

from __future__ import annotations

import asyncio

from app.services.fleet.wakeups import RESOLUTION_SECONDS, DeadlineTimers, Wakeup


async def test_a_wait_ends_at_its_deadline_rounded_up_to_the_resolution() -> None:
    loop = asyncio.get_running_loop()
    timers, wakeup = DeadlineTimers(), Wakeup()
    deadline = loop.time() + 0.3

    await asyncio.wait_for(wakeup.wait(timers, deadline), timeout=5)

    assert deadline <= loop.time() <= deadline + RESOLUTION_SECONDS + 0.2
    assert wakeup.held == 0


async def test_set_wakes_every_held_wait_at_once() -> None:
    loop = asyncio.get_running_loop()
    timers, wakeup = DeadlineTimers(), Wakeup()
    waits = [asyncio.create_task(wakeup.wait(timers, loop.time() + 60)) for _ in range(1000)]
    await asyncio.sleep(0)
    assert wakeup.held == 1000

    wakeup.set()

    await asyncio.wait_for(asyncio.gather(*waits), timeout=5)
    assert wakeup.held == 0


async def test_a_cancelled_wait_is_no_longer_held() -> None:
    loop = asyncio.get_running_loop()
    timers, wakeup = DeadlineTimers(), Wakeup()
    held = asyncio.create_task(wakeup.wait(timers, loop.time() + 60))
    await asyncio.sleep(0)

    held.cancel()
    await asyncio.gather(held, return_exceptions=True)

    assert wakeup.held == 0
