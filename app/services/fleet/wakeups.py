"""Held long polls: woken by their satellite's news or by their deadline, cheaply.

At 10,000 satellites about 10,000 polls are held at any time. A task and a
timer per held poll (`asyncio.wait_for`) cost more than the rest of the idle
poll, so a held poll is one future: its satellite's `Wakeup` resolves it when
work is marked pending, the satellite changes or the server stops, and
`DeadlineTimers` resolves it at its deadline with one loop timer per
`RESOLUTION_SECONDS` bucket, shared by every poll whose deadline falls in it.
A poll may therefore be answered up to `RESOLUTION_SECONDS` after its wait.
"""

from __future__ import annotations

import asyncio
import math

RESOLUTION_SECONDS = 0.25


class Wakeup:
    """The held polls of one satellite."""

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[bool]] = []

    @property
    def held(self) -> int:
        return len(self._waiters)

    def set(self) -> None:
        """Wake every held poll (each re-checks what it waits for)."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(True)

    async def wait(self, timers: DeadlineTimers, deadline: float) -> None:
        """Until `set()` or `deadline` (loop time, rounded up to the timers' resolution)."""
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        timers.add(waiter, deadline)
        try:
            await waiter
        finally:
            if not waiter.done():
                waiter.cancel()
            if waiter in self._waiters:  # not when set() took the list
                self._waiters.remove(waiter)


class DeadlineTimers:
    """One loop timer per deadline bucket; each resolves the futures due in it."""

    def __init__(self, resolution: float = RESOLUTION_SECONDS) -> None:
        self._resolution = resolution
        self._buckets: dict[int, list[asyncio.Future[bool]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def add(self, waiter: asyncio.Future[bool], deadline: float) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # the timers of another (closed) loop never fire here
            self._loop, self._buckets = loop, {}
        bucket = math.ceil(deadline / self._resolution)
        due = self._buckets.get(bucket)
        if due is None:
            due = self._buckets[bucket] = []
            loop.call_at(bucket * self._resolution, self._fire, bucket)
        due.append(waiter)

    def _fire(self, bucket: int) -> None:
        for waiter in self._buckets.pop(bucket, ()):
            if not waiter.done():
                waiter.set_result(False)


__all__ = ["RESOLUTION_SECONDS", "DeadlineTimers", "Wakeup"]
