"""Lenient coercion of the values events carry: a value of the wrong kind becomes
the default (None, 0, the event's time), never a failure."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        return number if abs(number) < 1e15 else None
    return None


def count(value: Any) -> int:
    if isinstance(value, int | float) and not isinstance(value, bool) and value == value:
        return max(0, min(int(value), 2**62))
    return 0


def text(value: Any, limit: int | None) -> str | None:
    if not isinstance(value, str):
        return None
    return value if limit is None else value[:limit]


def when(value: Any, default: datetime) -> datetime:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return default
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    return default


def int32(value: Any) -> int | None:
    """A whole number that fits a 32-bit column, else None."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value == value \
            and -2**31 <= value < 2**31 and value == int(value):
        return int(value)
    return None
