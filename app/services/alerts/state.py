"""What the alert rules remember between messages, per instance (docs/alerts.md §2).

Open alerts' keys (so a heartbeat costs no database read), windows of recent crashes
and authentication failures, heartbeats in a row over a threshold, `configure`
commands waiting to be acknowledged. Only the leader evaluates; a new leader loads
the open keys and starts the windows empty, so an alert whose window straddles the
hand-over may open later, never twice.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from app.services.alerts.rules import RuleBook

# Subjects remembered per kind; the oldest are forgotten beyond this.
MAX_SUBJECTS = 100_000


@dataclass
class Window:
    seconds: float
    times: deque[float] = field(default_factory=deque)


@dataclass
class AlertMemory:
    rules: RuleBook = field(default_factory=RuleBook)
    # `rule|subject` of every alert not resolved (loaded when this instance starts leading)
    open_keys: set[str] = field(default_factory=set)
    loaded: bool = False
    # `rule|subject` → recent occurrences (crashes, authentication failures, limit breaches)
    windows: dict[str, Window] = field(default_factory=dict)
    # satellite id → heartbeats in a row over a threshold
    over_threshold: dict[str, int] = field(default_factory=dict)
    # satellite id → the last heartbeat time the rules looked at
    heartbeat_seen: dict[str, datetime] = field(default_factory=dict)
    # configure command id → (satellite id, team id, when it was queued)
    configures: dict[str, tuple[str, str | None, datetime]] = field(default_factory=dict)
    # set when a delivery is queued, so the delivery run starts at once
    deliveries_due: asyncio.Event = field(default_factory=asyncio.Event)
    # Held by each pass of the engine (a bus message, a tick, a raise or clear from
    # elsewhere): `open_keys` is read before and written after awaits, so two passes
    # interleaved could re-open what the other just resolved, or replace the keys with
    # a read taken before the other's write (an open alert then never resolves).
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def note(self, key: str, now: float, seconds: float) -> int:
        """One occurrence for `key`; how many fall within the last `seconds`."""
        window = self.windows.get(key)
        if window is None:
            if len(self.windows) >= MAX_SUBJECTS:
                self.windows.pop(next(iter(self.windows)))
            window = self.windows[key] = Window(seconds)
        window.seconds = seconds
        window.times.append(now)
        while window.times and window.times[0] < now - seconds:
            window.times.popleft()
        return len(window.times)

    def quiet(self, now: float) -> list[str]:
        """Keys with no occurrence within their window (and forgotten here)."""
        keys = [key for key, window in self.windows.items()
                if not window.times or window.times[-1] < now - window.seconds]
        for key in keys:
            del self.windows[key]
        return keys
