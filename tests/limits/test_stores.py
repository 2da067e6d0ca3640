"""The limit stores count the same way in memory and in Redis; two Redis stores on one
prefix (two instances) share every count; an unreachable Redis never fails a request.

The Redis cases need TEST_REDIS_URL (skipped loudly without it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from app.limits import LimitStore, MemoryLimitStore
from app.limits.base import NO_WINDOW
from app.limits.redis import RedisLimitStore
from tests.fixtures.redis import RedisForwarder
from tests.fixtures.server import with_channel_prefix

StoreFactory = Callable[[], LimitStore]


@pytest.fixture(params=["memory", "redis"])
async def new_store(request: pytest.FixtureRequest) -> AsyncIterator[StoreFactory]:
    """Stores of one kind; Redis stores made by one factory share one prefix (instances)."""
    stores: list[LimitStore] = []
    if request.param == "memory":
        shared: LimitStore = MemoryLimitStore()

        def factory() -> LimitStore:
            return shared
    else:
        redis_url: str = request.getfixturevalue("redis_url")
        prefix: str = request.getfixturevalue("prefix")

        def factory() -> LimitStore:
            store = RedisLimitStore(with_channel_prefix(redis_url, prefix))
            stores.append(store)
            return store

    yield factory
    for store in stores:
        await store.close()


async def test_a_bucket_gives_its_burst_then_says_how_long_to_wait(
    new_store: StoreFactory,
) -> None:
    # A slow refill (one token per 100 s): the round trips of a loaded machine cannot
    # refill a token between the takes, nor change the wait by more than they last.
    store = new_store()
    waits = [await store.take("bucket:poll:sat-1", 0.01, 3) for _ in range(4)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert 90 < waits[3] <= 100  # one token at 0.01/s is 100 s away (less what has passed)
    assert await store.take("bucket:poll:sat-2", 0.01, 3) == 0.0  # another satellite's bucket


async def test_a_bucket_refills_at_its_rate_up_to_its_burst(new_store: StoreFactory) -> None:
    # One token a second: three takes in a row stay well within one refill.
    store = new_store()
    for _ in range(2):
        assert await store.take("b", 1.0, 2) == 0.0
    assert await store.take("b", 1.0, 2) > 0
    await asyncio.sleep(3.5)  # 3.5 tokens' worth of time, but the bucket holds 2
    assert [await store.take("b", 1.0, 2) == 0.0 for _ in range(3)] == [True, True, False]


async def test_a_bucket_with_no_refill_rate_reports_a_long_wait(new_store: StoreFactory) -> None:
    store = new_store()
    assert await store.take("b", 0.0, 1) == 0.0
    assert await store.take("b", 0.0, 1) >= 60


async def test_failures_count_within_a_window_that_then_ends(new_store: StoreFactory) -> None:
    # A window of seconds: the round trips of a loaded machine all fit inside it.
    store = new_store()
    assert await store.window("failures:auth:10.0.0.1") == NO_WINDOW
    counts = [(await store.add_failure("failures:auth:10.0.0.1", 3.0)).failures
              for _ in range(3)]
    assert counts == [1, 2, 3]
    window = await store.window("failures:auth:10.0.0.1")
    assert window.failures == 3
    assert 0 < window.seconds_left <= 3.0
    assert await store.window("failures:auth:10.0.0.2") == NO_WINDOW
    await asyncio.sleep(3.2)  # the window opened before this: it has ended
    assert await store.window("failures:auth:10.0.0.1") == NO_WINDOW
    assert (await store.add_failure("failures:auth:10.0.0.1", 3.0)).failures == 1


async def test_two_redis_stores_on_one_prefix_share_buckets_and_windows(
    redis_url: str, prefix: str,
) -> None:
    a = RedisLimitStore(with_channel_prefix(redis_url, prefix))
    b = RedisLimitStore(with_channel_prefix(redis_url, prefix))
    other = RedisLimitStore(with_channel_prefix(redis_url, f"other-{prefix}"))
    try:
        assert [await s.take("bucket", 0.01, 4) for s in (a, b, a, b)] == [0.0] * 4
        assert await a.take("bucket", 0.01, 4) > 0
        assert await b.take("bucket", 0.01, 4) > 0
        assert await other.take("bucket", 0.01, 4) == 0.0  # another deployment's count

        await a.add_failure("failures:login:email:x@example.com", 60)
        assert (await b.add_failure("failures:login:email:x@example.com", 60)).failures == 2
        assert (await a.window("failures:login:email:x@example.com")).failures == 2
        assert a.fallbacks == b.fallbacks == 0
    finally:
        for store in (a, b, other):
            await store.close()


async def test_redis_keys_are_prefixed_bounded_in_length_and_expire(
    redis_url: str, prefix: str, admin: Redis,
) -> None:
    store = RedisLimitStore(with_channel_prefix(redis_url, prefix))
    try:
        await store.take("bucket:poll:sat-1", 1.0, 30)
        await store.add_failure("failures:login:email:" + "x" * 5000 + "@example.com", 60)
        keys = sorted(key.decode() for key in await admin.keys(f"{prefix}*"))
        assert len(keys) == 2
        assert all(key.startswith(f"{prefix}limit:") and len(key) < 200 for key in keys)
        for key in keys:
            assert 0 < await admin.pttl(key) <= 60_000 + 1000
    finally:
        await store.close()


async def test_with_redis_unreachable_counting_goes_on_in_process_and_shares_again_after(
    forwarder: RedisForwarder, prefix: str,
) -> None:
    # Generous timeouts: with the forwarder stopped, connections are refused at once
    # anyway; once it is back, a slow answer must not count as an outage.
    store = RedisLimitStore(forwarder.url(prefix), timeout=10.0)
    peer = RedisLimitStore(forwarder.url(prefix), timeout=10.0)
    try:
        assert await store.take("bucket", 0.01, 2) == 0.0
        await forwarder.stop()
        # Redis is gone: answers still come (counted here), never an exception.
        assert await store.take("bucket", 0.01, 2) == 0.0
        assert await store.take("bucket", 0.01, 2) == 0.0
        assert await store.take("bucket", 0.01, 2) > 0
        assert (await store.add_failure("failures:auth:a", 60)).failures == 1
        assert store.fallbacks >= 4
        await forwarder.start()
        # Past the pause that follows a failure (the last one was before the start).
        await asyncio.sleep(1.1)
        fallbacks = store.fallbacks
        # Shared again: Redis kept the one token taken before the outage.
        assert await peer.take("bucket", 0.01, 2) == 0.0
        assert await store.take("bucket", 0.01, 2) > 0
        assert peer.fallbacks == 0
        assert store.fallbacks == fallbacks  # that answer came from Redis, not from memory
    finally:
        await store.close()
        await peer.close()
