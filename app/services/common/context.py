"""What every service function may use: the process-wide collaborators.

Services are plain async functions taking this context first (`rt`). The
composition root (`app/runtime.py`) builds the one object that satisfies it and
every domain's wider context; services never import the root.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from app.auth.keys import DerivedKeys
from app.auth.secrets import SecretBox
from app.bus import Bus
from app.config import Settings
from app.limits import LimitStore
from app.metrics import Metrics
from app.services.common.clock import Clock
from app.tasks import BackgroundTasks


class Core(Protocol):
    settings: Settings
    bus: Bus
    keys: DerivedKeys
    secrets: SecretBox
    metrics: Metrics
    # Counters behind every rate limit (shared through Redis when REDIS_URL is set).
    limits: LimitStore
    tasks: BackgroundTasks
    clock: Clock
    shutting_down: asyncio.Event
