"""Whether the configured Redis answers, said in one line for a person.

The server runs degraded while Redis is down (docs/operations.md §4); a command and
`doctor` ask once, so that a wrong REDIS_URL or a stopped Redis is named as such,
never as a driver's exception.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, RedisError
from redis.exceptions import TimeoutError as RedisTimeout

from app.redis_url import safe_url, split_prefix

PROBE_TIMEOUT_SECONDS = 2.0


def _reason(error: BaseException) -> str:
    if isinstance(error, AuthenticationError):
        return "authentication failed (check the password in REDIS_URL)"
    if isinstance(error, RedisTimeout | TimeoutError):
        return "no answer (timed out)"
    text = str(error).lower()
    if "refused" in text:
        return "connection refused"
    if "name or service not known" in text or "nodename nor servname" in text:
        return "the host name does not resolve"
    return "no answer"


async def redis_problem(url: str) -> str | None:
    """None when Redis answers PING, else one line naming it (never its password)."""
    plain, _ = split_prefix(url)
    try:
        client = Redis.from_url(plain, socket_connect_timeout=PROBE_TIMEOUT_SECONDS,
                                socket_timeout=PROBE_TIMEOUT_SECONDS)
    except ValueError:  # a port that is not a number, an unknown option
        return f"REDIS_URL is not a valid Redis URL: {safe_url(plain)}"
    try:
        await client.ping()
    except (RedisError, OSError) as error:
        return (f"cannot connect to Redis at {safe_url(plain)}: {_reason(error)} "
                "(start Redis, or fix or unset REDIS_URL)")
    finally:
        await client.aclose()
    return None


__all__ = ["redis_problem"]
