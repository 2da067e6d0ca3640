"""Limit counters in this process's memory (one instance, or Redis unreachable)."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from app.limits.base import NO_WINDOW, Window

# Bounded so a client cycling through addresses or ids cannot grow memory without end;
# the oldest entries go first (a forgotten bucket is full again, a forgotten window empty).
MAX_BUCKETS = 200_000
MAX_WINDOWS = 50_000
# A bucket whose rate is zero never refills: the wait it reports.
NO_REFILL_WAIT_SECONDS = 60.0


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


@dataclass(slots=True)
class _Window:
    count: int
    ends: float


class MemoryLimitStore:
    def __init__(self) -> None:
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._windows: OrderedDict[str, _Window] = OrderedDict()

    async def close(self) -> None:
        return None

    async def take(self, key: str, rate_per_second: float, burst: int) -> float:
        return self.take_now(key, rate_per_second, burst)

    def take_now(self, key: str, rate_per_second: float, burst: int) -> float:
        now = time.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(burst), now)
            while len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)
        bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.updated) * rate_per_second)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        if rate_per_second <= 0:
            return NO_REFILL_WAIT_SECONDS
        return (1.0 - bucket.tokens) / rate_per_second

    async def window(self, key: str) -> Window:
        return self.window_now(key)

    def window_now(self, key: str) -> Window:
        entry = self._windows.get(key)
        if entry is None:
            return NO_WINDOW
        left = entry.ends - time.monotonic()
        if left <= 0:
            del self._windows[key]
            return NO_WINDOW
        return Window(entry.count, left)

    async def add_failure(self, key: str, window_seconds: float) -> Window:
        return self.add_failure_now(key, window_seconds)

    def add_failure_now(self, key: str, window_seconds: float) -> Window:
        if self.window_now(key) is NO_WINDOW:
            self._windows[key] = _Window(0, time.monotonic() + window_seconds)
            while len(self._windows) > MAX_WINDOWS:
                self._windows.popitem(last=False)
        entry = self._windows[key]
        entry.count += 1
        return Window(entry.count, entry.ends - time.monotonic())

    async def remove_failure(self, key: str) -> None:
        self.remove_failure_now(key)

    def remove_failure_now(self, key: str) -> None:
        if self.window_now(key) is not NO_WINDOW:
            entry = self._windows[key]
            entry.count = max(0, entry.count - 1)
