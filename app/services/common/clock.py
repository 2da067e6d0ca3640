"""Time: one `Clock` the runtime owns, aware UTC datetimes and the wire format.

Services ask `rt.clock` for the time instead of reading the system clock, so a
test can hand the runtime a `ManualClock` and move time forward explicitly
(leases, expiry, offline detection) without patching any module.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time as an aware UTC datetime."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (durations, deadlines)."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


SYSTEM_CLOCK: Clock = SystemClock()


class ManualClock:
    """A clock that moves only when told to (tests, simulations)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)
        self._monotonic = 1_000.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> datetime:
        self._now += timedelta(seconds=seconds)
        self._monotonic += seconds
        return self._now

    def set(self, when: datetime) -> None:
        """Jump to `when` (the monotonic clock moves by the same amount, never back)."""
        self._monotonic += max(0.0, (when - self._now).total_seconds())
        self._now = when


def utcnow() -> datetime:
    """The system time; only for code that has no runtime (CLI output, migrations)."""
    return datetime.now(UTC)


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
