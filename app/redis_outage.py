"""How a Redis user behaves while Redis fails: skip it briefly, say so loudly, not often.

After a failed call, Redis is skipped for `pause_seconds` (callers take their
fallback at once instead of each waiting for a connection attempt). Every skipped
or failed call is counted; the first failure of an outage is logged at error level,
then at most every `log_every_seconds`, and the first success afterwards once.
"""

from __future__ import annotations

import logging
import time
from typing import Any

log = logging.getLogger(__name__)


class RedisOutage:
    def __init__(self, op: str, *, down: str, up: str, pause_seconds: float = 1.0,
                 log_every_seconds: float = 10.0) -> None:
        self._op = op
        self._down = down
        self._up = up
        self._pause = pause_seconds
        self._log_every = log_every_seconds
        self._paused_until = 0.0
        self._failing_since: float | None = None
        self._last_log = 0.0
        self.failures = 0  # calls that failed or were skipped (tests, logs)

    def skipping(self, **context: Any) -> bool:
        """True (and counted) while Redis is paused after a failure."""
        now = time.monotonic()
        if now >= self._paused_until:
            return False
        self._count(None, now, context)
        return True

    def failed(self, error: BaseException, **context: Any) -> None:
        now = time.monotonic()
        self._paused_until = now + self._pause
        self._count(error, now, context)

    def succeeded(self) -> None:
        if self._failing_since is None:
            return
        log.warning(self._up, extra={
            "op": self._op, "failures": self.failures,
            "down_seconds": round(time.monotonic() - self._failing_since, 1)})
        self._failing_since = None

    def _count(self, error: BaseException | None, now: float, context: dict[str, Any]) -> None:
        self.failures += 1
        first = self._failing_since is None
        if first:
            self._failing_since = now
        if first or now - self._last_log >= self._log_every:
            self._last_log = now
            log.error(self._down, extra={
                "op": self._op, **context, "failures": self.failures,
                "error": repr(error) if error is not None else "skipped after a failure"})
