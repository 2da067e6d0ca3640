"""Limit counters in Redis, shared by every instance (docs/architecture.md §4, `REDIS_URL`).

Each operation is one Lua script (atomic on the server; the scripts of concurrent
requests share one round trip, `app/redis_pipeline.py`) and uses Redis's own
clock, so instances with drifting clocks still agree. Keys are
`<channel_prefix>limit:…` and expire by themselves.

Redis unreachable → the operation is counted in this process instead (the
service keeps working; a satellite may get up to N× its rate across N instances
until Redis is back), logged loudly, and Redis is skipped for a second after
each failure so requests do not each wait for a connection attempt.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from app.limits.base import NO_WINDOW, Window
from app.limits.memory import NO_REFILL_WAIT_SECONDS, MemoryLimitStore
from app.redis_outage import RedisOutage
from app.redis_pipeline import PipelinedCalls
from app.redis_url import DEFAULT_PREFIX, safe_url, split_prefix

log = logging.getLogger(__name__)

# Longer keys (e-mail addresses, say) are hashed so a client cannot make Redis keys huge.
_MAX_KEY_PART = 128

# KEYS[1] bucket; ARGV rate, burst, no-refill wait. Returns the wait as a string
# (a Lua number would be truncated to an integer on the way out).
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(state[1]) or burst
local updated = tonumber(state[2]) or now
if now > updated then tokens = math.min(burst, tokens + (now - updated) * rate) end
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
elseif rate > 0 then
  wait = (1 - tokens) / rate
else
  wait = tonumber(ARGV[3])
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
local ttl = 86400000
if rate > 0 then ttl = math.ceil(burst / rate * 1000) + 1000 end
redis.call('PEXPIRE', KEYS[1], ttl)
return tostring(wait)
"""

# KEYS[1] window; ARGV[1] window length in ms. Returns {count, ms left}.
_ADD_FAILURE = """
local count = redis.call('INCR', KEYS[1])
if count == 1 or redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return {count, redis.call('PTTL', KEYS[1])}
"""

# KEYS[1] window. One failure less, never below zero; the expiry stays.
_REMOVE_FAILURE = """
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count > 0 then redis.call('DECR', KEYS[1]) end
return count
"""

_WINDOW = """
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
return {count, redis.call('PTTL', KEYS[1])}
"""


class RedisLimitStore:
    def __init__(self, url: str, *, timeout: float = 1.0) -> None:
        self._url, url_prefix = split_prefix(url)
        self._prefix = f"{url_prefix or DEFAULT_PREFIX}limit:"
        # redis-py connects on first use, in the loop that uses it.
        self._client: Redis | None = Redis.from_url(
            self._url,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self._scripts: dict[str, AsyncScript] = {
            "take": self._client.register_script(_TAKE),
            "add_failure": self._client.register_script(_ADD_FAILURE),
            "window": self._client.register_script(_WINDOW),
            "remove_failure": self._client.register_script(_REMOVE_FAILURE),
        }
        # Concurrent requests' scripts go to Redis together, one round trip per batch.
        self._calls = PipelinedCalls(self._client)
        self._local = MemoryLimitStore()
        self._log_context = {"url": safe_url(self._url)}
        self._outage = RedisOutage(
            "limits.redis",
            down="Redis limit store unreachable: rate limits are counted per instance "
                 "until it is back",
            up="Redis limit store reachable again; limits are shared again",
        )

    @property
    def fallbacks(self) -> int:
        """Operations counted in this process because Redis could not be used."""
        return self._outage.failures

    async def close(self) -> None:
        await self._calls.close()
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.aclose()
            except Exception:  # noqa: BLE001 - closing a broken connection is best effort
                log.debug("closing the Redis limit store failed", exc_info=True)

    async def take(self, key: str, rate_per_second: float, burst: int) -> float:
        reply = await self._run("take", key, rate_per_second, burst, NO_REFILL_WAIT_SECONDS)
        if reply is None:
            return self._local.take_now(key, rate_per_second, burst)
        return float(reply.decode() if isinstance(reply, bytes) else reply)

    async def window(self, key: str) -> Window:
        reply = await self._run("window", key)
        return self._local.window_now(key) if reply is None else _window(reply)

    async def add_failure(self, key: str, window_seconds: float) -> Window:
        reply = await self._run("add_failure", key, max(1, round(window_seconds * 1000)))
        if reply is None:
            return self._local.add_failure_now(key, window_seconds)
        return _window(reply)

    async def remove_failure(self, key: str) -> None:
        if await self._run("remove_failure", key) is None:
            self._local.remove_failure_now(key)

    async def _run(self, script: str, key: str, *args: object) -> Any:
        """The script's reply, or None when Redis cannot be used (count locally then)."""
        if self._client is None or self._outage.skipping(**self._log_context):
            return None
        try:
            reply = await self._evalsha(self._scripts[script], self._key(key), args)
        except Exception as error:  # any Redis trouble: the request still gets an answer
            self._outage.failed(error, **self._log_context)
            return None
        self._outage.succeeded()
        return reply

    async def _evalsha(self, script: AsyncScript, key: str, args: tuple[object, ...]) -> Any:
        def stage(pipeline: Pipeline) -> object:
            return pipeline.evalsha(script.sha, 1, key, *args)  # type: ignore[arg-type]

        try:
            return await self._calls.call(stage)
        except NoScriptError:  # a restarted (or flushed) Redis forgot the script
            assert self._client is not None
            await self._client.script_load(script.script)
            return await self._calls.call(stage)

    def _key(self, key: str) -> str:
        if len(key) > _MAX_KEY_PART:
            key = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
        return self._prefix + key


def _window(reply: Any) -> Window:
    count, millis_left = int(reply[0]), int(reply[1])
    if count <= 0 or millis_left <= 0:
        return NO_WINDOW
    return Window(count, millis_left / 1000)
