"""Owned background tasks: kept in a set, cancelled on shutdown, failures logged."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)

CANCEL_GRACE_SECONDS = 1.0


class BackgroundTasks:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self, coroutine: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("background task %s failed", task.get_name(), exc_info=error)

    async def stop(self, grace_seconds: float = 5.0,
                   cancel_grace_seconds: float = CANCEL_GRACE_SECONDS) -> None:
        """Let tasks finish on their own (they watch the shutdown event), then cancel,
        and wait at most `cancel_grace_seconds` more for the cancelled ones.

        Cancelling a task in the middle of a database call is a last resort:
        tortoise's SQLite transaction context leaks its connection lock when it
        is cancelled while entering, and a cancelled task may itself wait on a
        locked database while it rolls back; so the wait after cancelling is
        bounded too (shutdown goes on without such a task).
        """
        tasks = list(self._tasks)
        if tasks:
            _, still_running = await asyncio.wait(tasks, timeout=grace_seconds)
            for task in still_running:
                log.warning("background task did not stop in time; cancelling",
                            extra={"task": task.get_name()})
                task.cancel()
            if still_running:
                _, stuck = await asyncio.wait(still_running, timeout=cancel_grace_seconds)
                for task in stuck:
                    log.error("background task still running after being cancelled; "
                              "going on without it", extra={"task": task.get_name()})
        self._tasks.clear()

    def __len__(self) -> int:
        return len(self._tasks)
