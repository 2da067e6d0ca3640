"""One Redis round trip for the commands concurrent requests issue together.

Under load many handlers each want one small Redis command at the same moment (a
PUBLISH, a rate-limit script). Sent one by one, every request waits for its own
round trip and the connection pool grows; here they are queued and sent as one
pipeline (no MULTI) by a single sender, while the next batch collects behind it —
the same group-commit idea the event writer uses. Each caller still waits for its
own reply, so "returned" keeps meaning "Redis has it".
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

Stage = Callable[[Pipeline], object]


class PipelinedCalls:
    def __init__(self, client: Redis) -> None:
        self._client = client
        self._queue: list[tuple[Stage, asyncio.Future[Any]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def call(self, stage: Stage) -> Any:
        """Stage one command (`stage(pipeline)`), wait for its reply; raises its error."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((stage, future))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send(), name="redis-pipeline")
        return await future

    async def close(self) -> None:
        sender, self._sender = self._sender, None
        if sender is not None:
            with contextlib.suppress(Exception):
                await sender

    async def _send(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            pipeline = self._client.pipeline(transaction=False)
            for stage, _ in batch:
                stage(pipeline)
            try:
                replies = await pipeline.execute(raise_on_error=False)
            except Exception as error:  # the connection failed: every caller hears it
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), reply in zip(batch, replies, strict=True):
                if future.done():  # its caller gave up (cancelled)
                    continue
                if isinstance(reply, Exception):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)
