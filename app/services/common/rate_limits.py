"""Rate limits: per-satellite token buckets (docs/protocol.md §11) and failure windows.

The rules live here; the counting is done by a `LimitStore` (`app/limits`), in
process memory or in Redis, so every instance of a deployment shares one count.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

from app.config import Settings
from app.errors import RateLimited
from app.limits import LimitStore


class SatelliteRateLimits:
    """Polls and event batches, one token bucket per satellite and kind."""

    POLL = "poll"
    EVENTS = "events"

    def __init__(self, settings: Settings, store: LimitStore) -> None:
        self._store = store
        self._specs = {
            self.POLL: (settings.poll_rate_per_second, settings.poll_burst),
            self.EVENTS: (settings.events_rate_per_second, settings.events_burst),
        }

    async def check(self, satellite_id: str, kind: str) -> None:
        """Take one token or raise `RateLimited` with the seconds until the next one."""
        rate, burst = self._specs[kind]
        wait = await self._store.take(f"bucket:{kind}:{satellite_id}", rate, burst)
        if wait > 0:
            raise RateLimited(
                f"Too many {kind} requests for this satellite; retry later",
                retry_after=max(1, math.ceil(wait)),
            )


class FailureLimiter:
    """More than `limit` failures for one key (an address, an e-mail) within a window
    that starts at the first failure → 429 for the rest of that window.

    Two ways to count. `check()` … `record_failure()` counts after the fact: cheap
    checks only, as concurrent attempts all pass the check before any failure is
    recorded. `reserve()` … `release()` counts every attempt as a failure *before*
    the expensive check and takes it back on success, so of any number of
    concurrent attempts at most `limit` are ever checked (login passwords).
    """

    def __init__(
        self, store: LimitStore, namespace: str, limit: int, window_seconds: float, message: str
    ) -> None:
        self._store = store
        self._namespace = namespace
        self._limit = limit
        self._window = float(window_seconds)
        self._message = message

    def _key(self, key: str) -> str:
        return f"failures:{self._namespace}:{key}"

    async def retry_after(self, key: str) -> int | None:
        """Seconds until this key may try again, or None when it is not blocked."""
        window = await self._store.window(self._key(key))
        if window.failures <= self._limit:
            return None
        return max(1, math.ceil(window.seconds_left))

    async def check(self, key: str) -> None:
        retry = await self.retry_after(key)
        if retry is not None:
            raise RateLimited(self._message, retry_after=retry)

    async def reserve(self, key: str,
                      on_burst: Callable[[], Awaitable[None]] | None = None) -> None:
        """Count this attempt as a failure now; `RateLimited` when that passes the limit
        (`on_burst` runs once per window, for the attempt that first passes it)."""
        window = await self._store.add_failure(self._key(key), self._window)
        if window.failures <= self._limit:
            return
        if window.failures == self._limit + 1 and on_burst is not None:
            await on_burst()
        raise RateLimited(self._message, retry_after=max(1, math.ceil(window.seconds_left)))

    async def release(self, key: str) -> None:
        """The reserved attempt succeeded: it is not a failure after all."""
        await self._store.remove_failure(self._key(key))

    async def record_failure(self, key: str) -> bool:
        """Count a failure; True exactly once per window (across instances), when the
        limit is first exceeded."""
        window = await self._store.add_failure(self._key(key), self._window)
        return window.failures == self._limit + 1
