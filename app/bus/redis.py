"""Redis pub/sub: every instance sees every message (docs/architecture.md §4, `REDIS_URL`).

- `publish()` hands the message to this process's subscribers at once (the
  in-process fan-out, so wake-ups on this instance keep working while Redis is
  down) and PUBLISHes it as JSON on `<prefix><channel>` for the other instances.
  It never raises: a failure is logged loudly and counted (`publish_failures`).
- One dedicated pub/sub connection per process (PSUBSCRIBE `<prefix>*`, so a new
  local subscriber is live at once, with no per-channel SUBSCRIBE round trip)
  reads the other instances' messages and fans them out locally through an
  `InProcessBus`: bounded queues, a subscriber that falls behind is dropped.
  Messages this process published itself are skipped (already delivered).
- Pub/sub channels are global to a Redis server (not per database number): two
  deployments sharing one Redis need different prefixes, set with the URL
  parameter `channel_prefix` (`redis://host:6379/0?channel_prefix=staging:`).
- The reader reconnects by itself with capped exponential backoff. While it is
  down `connected` is False; every (re)connection increases `epoch` and ends
  every current subscription with `RESYNC` (a `subscriber_dropped` message):
  whatever was published meanwhile is lost, so consumers re-read state from the
  database and subscribe again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from app.bus.base import RESYNC, Message
from app.bus.memory import InProcessBus
from app.redis_outage import RedisOutage
from app.redis_pipeline import PipelinedCalls
from app.redis_url import DEFAULT_PREFIX, safe_url, split_prefix

log = logging.getLogger(__name__)

_Item = tuple[str, Message]


class RedisBus:
    def __init__(
        self,
        url: str,
        *,
        prefix: str | None = None,
        queue_size: int = 1000,
        connect_timeout: float = 2.0,
        backoff_initial: float = 0.1,
        backoff_cap: float = 5.0,
        health_check_seconds: float = 3.0,
    ) -> None:
        self._url, url_prefix = split_prefix(url)
        self._prefix = prefix or url_prefix or DEFAULT_PREFIX
        self._local = InProcessBus(queue_size)
        self._origin = uuid.uuid4().hex
        self._connect_timeout = connect_timeout
        self._backoff_initial = backoff_initial
        self._backoff_cap = backoff_cap
        self._health_check_seconds = health_check_seconds
        self._publisher: Redis | None = None
        # Concurrent publishes go to Redis together, one round trip per batch.
        self._calls: PipelinedCalls | None = None
        self._reader: asyncio.Task[None] | None = None
        self._first_attempt: asyncio.Event | None = None
        self._connected = False
        self._epoch = 0
        self._closing = False
        # After a failed PUBLISH, later publishes skip Redis for a second (and only
        # count), so request handlers do not each pay for a connection attempt.
        self._publishing = RedisOutage(
            "bus.redis",
            down="Redis bus publish failed: other instances miss this message and fall back "
                 "to database re-checks",
            up="Redis bus publishing again",
        )
        # Counters (also useful to tests and to an operator reading logs).
        self.reconnects = 0
        self.received = 0

    # ---- state -------------------------------------------------------------
    @property
    def publish_failures(self) -> int:
        """Publishes that did not reach Redis (failed, or skipped during an outage)."""
        return self._publishing.failures

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def epoch(self) -> int:
        return self._epoch

    def _is_closing(self) -> bool:
        return self._closing

    def subscriber_count(self) -> int:
        return self._local.subscriber_count()

    # ---- lifecycle ---------------------------------------------------------
    async def start(self) -> None:
        """Connect; waits up to `connect_timeout` for the first connection, then goes on
        without it (the reader keeps trying in the background)."""
        if self._reader is not None:
            return
        self._closing = False
        self._publisher = self._client(retries=1)
        self._calls = PipelinedCalls(self._publisher)
        self._first_attempt = asyncio.Event()
        self._reader = asyncio.create_task(self._read_forever(), name="redis-bus-reader")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_attempt.wait(), self._connect_timeout * 2)
        if not self._connected:
            log.error(
                "Redis bus not connected at start-up; running degraded (database re-checks) "
                "and retrying in the background",
                extra={"op": "bus.redis", "url": safe_url(self._url)},
            )

    async def close(self) -> None:
        self._closing = True
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()  # no database work in the reader: cancelling is safe
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        calls, self._calls = self._calls, None
        if calls is not None:
            await calls.close()
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            with contextlib.suppress(RedisError, OSError):
                await publisher.aclose()
        self._connected = False
        await self._local.close()

    @staticmethod
    def reader_name_prefix(prefix: str) -> str:
        """The start of the reader connection's CLIENT SETNAME (seen in CLIENT LIST)."""
        safe = "".join(c if c.isalnum() or c in "-_.:" else "_" for c in prefix)
        return f"gs-bus-reader:{safe}"

    def _client(self, *, retries: int, name: str | None = None) -> Redis:
        return Redis.from_url(
            self._url,
            client_name=name,
            socket_connect_timeout=self._connect_timeout,
            socket_timeout=self._connect_timeout,
            socket_keepalive=True,
            retry=Retry(NoBackoff(), retries),
        )

    # ---- publishing --------------------------------------------------------
    async def publish(self, channel: str, message: Message) -> None:
        self._local.publish_nowait(channel, message)
        await self._send(channel, {"origin": self._origin, "message": message})

    async def publish_many(self, channel: str, messages: Sequence[Message]) -> None:
        """Local subscribers get each message; other instances get them in one PUBLISH."""
        for message in messages:
            self._local.publish_nowait(channel, message)
        if messages:
            await self._send(channel, {"origin": self._origin, "messages": list(messages)})

    async def _send(self, channel: str, envelope: dict[str, Any]) -> None:
        calls = self._calls
        if calls is None or self._publishing.skipping(channel=channel):
            return
        try:
            payload = json.dumps(envelope, separators=(",", ":"), default=str)
            target = self._prefix + channel
            await calls.call(lambda pipeline: pipeline.publish(target, payload))
        except Exception as error:  # never into the request handler: logged and counted
            self._publishing.failed(error, channel=channel)
            return
        self._publishing.succeeded()

    # ---- subscribing -------------------------------------------------------
    def subscribe(self, channels: Iterable[str], *, satellite_id: str | None = None
                  ) -> AsyncIterator[_Item]:
        return self._local.subscribe(channels, satellite_id=satellite_id)

    async def _read_forever(self) -> None:
        delay = self._backoff_initial
        failed_since: float | None = None
        while not self._closing:
            client = self._client(
                retries=0, name=f"{self.reader_name_prefix(self._prefix)}{self._origin[:8]}"
            )
            pubsub = client.pubsub()
            try:
                await pubsub.psubscribe(self._prefix + "*")
                await self._confirm_subscription(pubsub)
                self._on_connected(failed_since)
                failed_since = None
                delay = self._backoff_initial
                await self._pump(pubsub)
            except Exception as error:  # whatever it was, the reader starts over
                if not isinstance(error, (RedisError, OSError, TimeoutError)):
                    log.exception("Redis bus reader failed unexpectedly; reconnecting")
                was_connected = self._connected
                self._connected = False
                if was_connected or failed_since is None:
                    log.error(
                        "Redis bus connection lost; long polls and key checks fall back to "
                        "database re-checks until it is back",
                        extra={"op": "bus.redis", "url": safe_url(self._url),
                               "error": repr(error)},
                    )
                if failed_since is None:
                    failed_since = time.monotonic()
            finally:
                if self._first_attempt is not None:
                    self._first_attempt.set()
                with contextlib.suppress(RedisError, OSError, TimeoutError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]
                with contextlib.suppress(RedisError, OSError, TimeoutError):
                    await client.aclose()
            if self._is_closing():
                return
            await asyncio.sleep(delay)
            delay = min(self._backoff_cap, delay * 2)

    async def _confirm_subscription(self, pubsub: PubSub) -> None:
        deadline = time.monotonic() + self._connect_timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no PSUBSCRIBE confirmation from Redis")
            reply = await pubsub.get_message(timeout=remaining)
            if reply is not None and reply.get("type") == "psubscribe":
                return

    def _on_connected(self, failed_since: float | None) -> None:
        self._connected = True
        self._epoch += 1
        if self._epoch > 1:
            self.reconnects += 1
        if failed_since is not None or self._epoch > 1:
            log.warning(
                "Redis bus connected again; subscribers re-read state",
                extra={"op": "bus.redis", "epoch": self._epoch,
                       "down_seconds": None if failed_since is None
                       else round(time.monotonic() - failed_since, 1)},
            )
        # Anything published while we were not listening is lost: every current
        # subscriber starts over from the database.
        self._local.drop_all(RESYNC)
        if self._first_attempt is not None:
            self._first_attempt.set()

    async def _pump(self, pubsub: PubSub) -> None:
        """Fan the other instances' messages out locally until the connection fails.

        A quiet connection is probed with PING; no answer within one more
        interval counts as lost (a peer that vanished without closing the socket).
        """
        pinged = False
        while not self._closing:
            reply = await pubsub.get_message(timeout=self._health_check_seconds)
            if reply is None:
                if pinged:
                    raise TimeoutError("Redis bus: no answer to PING")
                await pubsub.ping("groundstation-bus")
                pinged = True
                continue
            pinged = False
            if reply.get("type") == "pmessage":
                self._deliver(reply)

    def _deliver(self, reply: dict[str, Any]) -> None:
        raw_channel = reply.get("channel")
        data = reply.get("data")
        try:
            channel = _text(raw_channel)[len(self._prefix):]
            envelope = json.loads(data if isinstance(data, (bytes, str)) else b"")
            origin = envelope["origin"]
            # `message`: one (publish); `messages`: several in order (publish_many).
            messages = envelope["messages"] if "messages" in envelope else [envelope["message"]]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            log.warning("ignoring a malformed Redis bus message",
                        extra={"op": "bus.redis", "channel": repr(raw_channel)})
            return
        if origin == self._origin or not isinstance(messages, list):
            return
        for message in messages:
            if isinstance(message, dict):
                self.received += 1
                self._local.publish_nowait(channel, message)


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, str):
        return value
    raise TypeError("channel name is neither bytes nor str")
