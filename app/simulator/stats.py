"""Request statistics cheap enough for thousands of requests per second.

Latencies go into a fixed logarithmic histogram (about 4 % wide buckets from
0.1 ms to two minutes), so a run keeps no samples and percentiles cost a scan
of a few hundred counters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

_LOWEST_SECONDS = 1e-4
_GROWTH = 1.04
_BUCKETS = int(math.log(120.0 / _LOWEST_SECONDS) / math.log(_GROWTH)) + 2
_LOG_GROWTH = math.log(_GROWTH)


class Histogram:
    __slots__ = ("_counts", "count", "maximum")

    def __init__(self) -> None:
        self._counts = [0] * _BUCKETS
        self.count = 0
        self.maximum = 0.0

    def record(self, seconds: float) -> None:
        index = 0 if seconds <= _LOWEST_SECONDS else min(
            _BUCKETS - 1, int(math.log(seconds / _LOWEST_SECONDS) / _LOG_GROWTH) + 1)
        self._counts[index] += 1
        self.count += 1
        if seconds > self.maximum:
            self.maximum = seconds

    def merge(self, other: Histogram) -> None:
        for index, value in enumerate(other._counts):
            self._counts[index] += value
        self.count += other.count
        self.maximum = max(self.maximum, other.maximum)

    def percentile(self, share: float) -> float:
        """The upper bound of the bucket holding the `share` quantile, in seconds."""
        if self.count == 0:
            return 0.0
        wanted = max(1, math.ceil(self.count * share))
        seen = 0
        for index, value in enumerate(self._counts):
            seen += value
            if seen >= wanted:
                return min(self.maximum, _LOWEST_SECONDS * _GROWTH ** index)
        return self.maximum


@dataclass
class RouteStats:
    """One route: answers, errors, throttled answers (429/503 with Retry-After)."""

    requests: int = 0
    errors: int = 0
    throttled: int = 0
    latency: Histogram = field(default_factory=Histogram)

    def summary(self, elapsed: float) -> dict[str, Any]:
        return {
            "requests": self.requests, "errors": self.errors, "throttled": self.throttled,
            "per_second": round(self.requests / elapsed, 1) if elapsed > 0 else 0.0,
            "p50_ms": round(self.latency.percentile(0.50) * 1000, 1),
            "p99_ms": round(self.latency.percentile(0.99) * 1000, 1),
            "max_ms": round(self.latency.maximum * 1000, 1),
        }


ROUTES = ("register", "heartbeat", "poll", "config", "command-result", "events")


@dataclass
class Stats:
    routes: dict[str, RouteStats] = field(
        default_factory=lambda: {route: RouteStats() for route in ROUTES})
    # Transport failures: refused connections (nothing listening) are told apart,
    # because a restarting server refuses for a moment and satellites retry.
    unreachable: int = 0
    transport_errors: int = 0
    commands_received: int = 0
    events_sent: int = 0
    events_rejected: int = 0
    error_samples: list[str] = field(default_factory=list)
    unreachable_samples: list[str] = field(default_factory=list)

    def note_error(self, text: str) -> None:
        if len(self.error_samples) < 10 and text not in self.error_samples:
            self.error_samples.append(text)

    def note_unreachable(self, text: str) -> None:
        if len(self.unreachable_samples) < 10 and text not in self.unreachable_samples:
            self.unreachable_samples.append(text)

    @property
    def requests(self) -> int:
        return sum(route.requests for route in self.routes.values())

    @property
    def errors(self) -> int:
        return sum(route.errors for route in self.routes.values()) + self.transport_errors


__all__ = ["ROUTES", "Histogram", "RouteStats", "Stats"]
