"""Per-satellite token buckets for polls and event batches (protocol.md §11)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from app.config import Settings
from app.errors import RateLimited


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


@dataclass(frozen=True, slots=True)
class BucketSpec:
    rate_per_second: float
    burst: int


class SatelliteRateLimits:
    POLL = "poll"
    EVENTS = "events"

    def __init__(self, settings: Settings) -> None:
        self._specs = {
            self.POLL: BucketSpec(settings.poll_rate_per_second, settings.poll_burst),
            self.EVENTS: BucketSpec(settings.events_rate_per_second, settings.events_burst),
        }
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def check(self, satellite_id: str, kind: str) -> None:
        """Take one token or raise `RateLimited` with the seconds until the next one."""
        spec = self._specs[kind]
        now = time.monotonic()
        bucket = self._buckets.get((satellite_id, kind))
        if bucket is None:
            bucket = self._buckets[(satellite_id, kind)] = _Bucket(float(spec.burst), now)
        bucket.tokens = min(
            float(spec.burst), bucket.tokens + (now - bucket.updated) * spec.rate_per_second
        )
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return
        wait = (1.0 - bucket.tokens) / spec.rate_per_second if spec.rate_per_second > 0 else 60
        raise RateLimited(
            f"Too many {kind} requests for this satellite; retry later",
            retry_after=math.ceil(wait),
        )

    def forget(self, satellite_id: str) -> None:
        for kind in self._specs:
            self._buckets.pop((satellite_id, kind), None)
