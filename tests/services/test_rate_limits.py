"""The rate-limit rules over a store: the 429s a satellite or a person sees, and the one
security event per burst, whether counted in memory or shared through Redis."""

from __future__ import annotations

import asyncio

import pytest

from app.config import Settings
from app.errors import RateLimited
from app.limits import LimitStore, MemoryLimitStore
from app.limits.redis import RedisLimitStore
from app.services.common.rate_limits import FailureLimiter, SatelliteRateLimits
from tests.fixtures.server import with_channel_prefix


async def test_polls_beyond_the_burst_are_limited_per_satellite_with_retry_after() -> None:
    limits = SatelliteRateLimits(Settings(poll_burst=2, poll_rate_per_second=0.5),
                                 MemoryLimitStore())
    await limits.check("sat-1", SatelliteRateLimits.POLL)
    await limits.check("sat-1", SatelliteRateLimits.POLL)
    with pytest.raises(RateLimited) as raised:
        await limits.check("sat-1", SatelliteRateLimits.POLL)
    assert raised.value.retry_after == 2  # one token at 0.5/s
    assert "rate limit" in raised.value.code
    await limits.check("sat-1", SatelliteRateLimits.EVENTS)  # its own bucket
    await limits.check("sat-2", SatelliteRateLimits.POLL)  # another satellite's


async def test_failures_block_after_the_limit_and_report_the_burst_once() -> None:
    limiter = FailureLimiter(MemoryLimitStore(), "auth", 2, 60, "Too many failures")
    reports = [await limiter.record_failure("10.0.0.1") for _ in range(5)]
    assert reports == [False, False, True, False, False]
    with pytest.raises(RateLimited) as raised:
        await limiter.check("10.0.0.1")
    assert 55 <= raised.value.retry_after <= 60
    await limiter.check("10.0.0.2")


async def test_instances_sharing_redis_block_together_and_report_the_burst_once(
    redis_url: str, prefix: str,
) -> None:
    stores: list[LimitStore] = [RedisLimitStore(with_channel_prefix(redis_url, prefix))
                                for _ in range(2)]
    try:
        a, b = (FailureLimiter(store, "login", 3, 60, "Too many failures") for store in stores)
        reports = [await limiter.record_failure("email:x@example.com")
                   for limiter in (a, b, a, b, a)]
        assert reports == [False, False, False, True, False]
        for limiter in (a, b):
            with pytest.raises(RateLimited):
                await limiter.check("email:x@example.com")
    finally:
        for store in stores:
            await store.close()


@pytest.fixture(params=["memory", "redis"])
async def login_store(request: pytest.FixtureRequest) -> object:
    if request.param == "memory":
        yield MemoryLimitStore()
        return
    redis_url: str = request.getfixturevalue("redis_url")
    store = RedisLimitStore(with_channel_prefix(redis_url, request.getfixturevalue("prefix")))
    yield store
    await store.close()


async def test_concurrent_reservations_let_at_most_the_limit_through(
    login_store: LimitStore,
) -> None:
    limiter = FailureLimiter(login_store, "login", 10, 60, "Too many failed logins")
    bursts: list[str] = []

    async def burst() -> None:
        bursts.append("burst")

    async def attempt() -> str:
        try:
            await limiter.reserve("email:x@example.com", on_burst=burst)
        except RateLimited:
            return "limited"
        await asyncio.sleep(0.05)  # the expensive check, while the others arrive
        return "checked"

    outcomes = await asyncio.gather(*(attempt() for _ in range(40)))

    assert outcomes.count("checked") == 10
    assert outcomes.count("limited") == 30
    assert bursts == ["burst"]


async def test_a_released_reservation_is_not_a_failure(login_store: LimitStore) -> None:
    limiter = FailureLimiter(login_store, "login", 2, 60, "Too many failed logins")
    for _ in range(5):  # right passwords: reserved, then released
        await limiter.reserve("email:y@example.com")
        await limiter.release("email:y@example.com")
    await limiter.reserve("email:y@example.com")  # two real failures still fit
    await limiter.reserve("email:y@example.com")
    with pytest.raises(RateLimited):
        await limiter.reserve("email:y@example.com")
