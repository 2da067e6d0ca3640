"""Shared counters for rate limits: in-process by default, Redis when REDIS_URL is set.

Every instance behind one load balancer must count the same satellite's polls and
the same address's failed logins together, or N instances would allow N times the
limit (docs/architecture.md §4). The rules (which limit, how much) live in
`app/services/common/rate_limits.py`; a store only counts.
"""

from app.limits.base import LimitStore
from app.limits.memory import MemoryLimitStore

__all__ = ["LimitStore", "MemoryLimitStore", "create_limit_store"]


def create_limit_store(redis_url: str | None) -> LimitStore:
    if redis_url:
        from app.limits.redis import RedisLimitStore  # imports redis only when configured

        return RedisLimitStore(redis_url)
    return MemoryLimitStore()
