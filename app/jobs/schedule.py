"""A periodic job: its name, what one run does and how often it runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from app.services.context import Services

Job = Callable[[Services], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ScheduledJob:
    name: str
    run_once: Job
    interval: Callable[[Services], float]
