"""In-process asyncio fan-out: one bounded queue per subscriber."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence

from app.bus.base import DROPPED, Message

_Item = tuple[str, Message]


class _Subscriber:
    __slots__ = ("queue", "dropped")

    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[_Item | None] = asyncio.Queue(maxsize=size)
        self.dropped = False


class InProcessBus:
    def __init__(self, queue_size: int = 1000) -> None:
        self._queue_size = max(2, queue_size)  # room for the final message and the end marker
        self._subscribers: defaultdict[str, set[_Subscriber]] = defaultdict(set)
        # channel -> satellite id -> subscribers to that satellite's messages only
        self._keyed: defaultdict[str, dict[str, set[_Subscriber]]] = defaultdict(dict)

    @property
    def connected(self) -> bool:
        return True

    @property
    def epoch(self) -> int:
        return 0

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        for subscriber in self._all():
            self._end(subscriber)
        self._subscribers.clear()
        self._keyed.clear()

    def _all(self) -> set[_Subscriber]:
        return {s for group in self._subscribers.values() for s in group} | {
            s for by_key in self._keyed.values() for group in by_key.values() for s in group}

    def subscriber_count(self) -> int:
        return len(self._all())

    async def publish(self, channel: str, message: Message) -> None:
        self.publish_nowait(channel, message)

    async def publish_many(self, channel: str, messages: Sequence[Message]) -> None:
        for message in messages:
            self.publish_nowait(channel, message)

    def publish_nowait(self, channel: str, message: Message) -> None:
        self._offer(self._subscribers.get(channel, ()), channel, message)
        by_key = self._keyed.get(channel)
        if by_key:
            key = message.get("satellite_id")
            if isinstance(key, str):
                self._offer(by_key.get(key, ()), channel, message)

    def _offer(self, subscribers: set[_Subscriber] | tuple[()], channel: str,
               message: Message) -> None:
        for subscriber in list(subscribers):
            if subscriber.dropped:
                continue
            try:
                subscriber.queue.put_nowait((channel, message))
            except asyncio.QueueFull:
                self._drop(subscriber)

    def drop_all(self, final: Message = DROPPED) -> None:
        """End every current subscription with `final` (messages may have been missed)."""
        for subscriber in self._all():
            if not subscriber.dropped:
                self._drop(subscriber, final)

    def _drop(self, subscriber: _Subscriber, final: Message = DROPPED) -> None:
        subscriber.dropped = True
        # Make room for the final message, then the end marker.
        while subscriber.queue.qsize() > self._queue_size - 2:
            subscriber.queue.get_nowait()
        subscriber.queue.put_nowait(("", final))
        subscriber.queue.put_nowait(None)

    def _end(self, subscriber: _Subscriber) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            subscriber.queue.put_nowait(None)

    async def subscribe(self, channels: Iterable[str], *, satellite_id: str | None = None
                        ) -> AsyncIterator[_Item]:
        names = list(channels)
        subscriber = _Subscriber(self._queue_size)
        for name in names:
            if satellite_id is None:
                self._subscribers[name].add(subscriber)
            else:
                self._keyed[name].setdefault(satellite_id, set()).add(subscriber)
        try:
            while True:
                item = await subscriber.queue.get()
                if item is None:
                    return
                yield item
        finally:
            for name in names:
                if satellite_id is None:
                    group = self._subscribers.get(name)
                    if group is not None:
                        group.discard(subscriber)
                        if not group:
                            del self._subscribers[name]
                    continue
                by_key = self._keyed.get(name, {})
                keyed = by_key.get(satellite_id)
                if keyed is not None:
                    keyed.discard(subscriber)
                    if not keyed:
                        del by_key[satellite_id]
                    if not by_key:
                        self._keyed.pop(name, None)
