"""The counting interface shared by the in-process and Redis limit stores."""

from __future__ import annotations

from typing import NamedTuple, Protocol


class Window(NamedTuple):
    """Failures counted in the current window and the seconds until it ends (0: none open)."""

    failures: int
    seconds_left: float


NO_WINDOW = Window(0, 0.0)


class LimitStore(Protocol):
    async def close(self) -> None: ...

    async def take(self, key: str, rate_per_second: float, burst: int) -> float:
        """Take one token from the bucket `key` (full at first, refilled at `rate_per_second`
        up to `burst`). 0.0 when taken, else the seconds until the next token."""
        ...

    async def window(self, key: str) -> Window:
        """The failure window `key` as it stands (`NO_WINDOW` when none is open)."""
        ...

    async def add_failure(self, key: str, window_seconds: float) -> Window:
        """Count one failure; the first one opens a window of `window_seconds`."""
        ...

    async def remove_failure(self, key: str) -> None:
        """Take one failure back (an attempt counted in advance succeeded); the window
        keeps its end."""
        ...
