"""The Redis bus against a real Redis (TEST_REDIS_URL, e.g. redis://127.0.0.1:6379/0).

Skipped, with the reason, when TEST_REDIS_URL is unset or Redis does not answer.
Every test uses its own channel prefix, so runs sharing one Redis do not meet.
Outages are real: the bus's pub/sub connection is killed with CLIENT KILL, or
the bus talks to Redis through a TCP forwarder that the test stops and starts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from app.bus import DROPPED, RESYNC, Channels, InProcessBus, Message, create_bus
from app.bus.redis import RedisBus
from app.errors import Unauthenticated
from app.models import Satellite
from app.models.enums import CommandType, TokenScope
from app.runtime import Runtime, build_runtime
from app.services.commands.queue import enqueue_command
from app.services.common.actors import CLI_ACTOR
from app.services.fleet.authentication import authenticate_satellite
from app.services.satellites.admin import rotate_satellite_key
from app.services.satellites.registration import register_satellite
from app.services.satellites.tokens import issue_registration_token
from app.wire.registration import RegistrationRequest
from tests.fixtures.redis import RedisForwarder
from tests.fixtures.satellites import TestSatellite, satellite_factory, until_poll_held
from tests.fixtures.server import eventually, make_settings, running, with_channel_prefix

Item = tuple[str, Message]
# Generous: only a failing test waits this long.
WAIT_SECONDS = 15.0
# Published after what a test checks: the next item must be this one (nothing in between).
SENTINEL: Message = {"sentinel": True}


# ---- fixtures ------------------------------------------------------------------------


BusFactory = Callable[..., Awaitable[RedisBus]]


@pytest.fixture
async def make_bus(redis_url: str, prefix: str) -> AsyncIterator[BusFactory]:
    buses: list[RedisBus] = []

    async def factory(url: str | None = None, **options: Any) -> RedisBus:
        options.setdefault("prefix", prefix)
        options.setdefault("backoff_cap", 0.5)
        bus = RedisBus(url or redis_url, **options)
        buses.append(bus)
        await bus.start()
        return bus

    yield factory
    for bus in buses:
        await bus.close()


class Subscription:
    """A subscription read by a background task into a queue (so tests can look at it)."""

    def __init__(self, bus: RedisBus | InProcessBus, channels: list[str]) -> None:
        self.items: asyncio.Queue[Item | None] = asyncio.Queue()
        self._source = bus.subscribe(channels)
        self._task = asyncio.ensure_future(self._pump())

    async def _pump(self) -> None:
        async for item in self._source:
            self.items.put_nowait(item)
        self.items.put_nowait(None)  # the subscription ended

    async def next(self) -> Item | None:
        return await asyncio.wait_for(self.items.get(), timeout=WAIT_SECONDS)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@pytest.fixture
async def subscribe() -> AsyncIterator[Callable[..., Awaitable[Subscription]]]:
    opened: list[Subscription] = []

    async def factory(bus: RedisBus | InProcessBus, *channels: str) -> Subscription:
        subscription = Subscription(bus, list(channels))
        opened.append(subscription)
        await asyncio.sleep(0)  # registered on the bus from here on
        return subscription

    yield factory
    for subscription in opened:
        await subscription.close()


async def kill_reader(admin: Redis, prefix: str) -> int:
    """CLIENT KILL the pub/sub connection(s) listening on this test's prefix."""
    killed = 0
    for client in await admin.client_list(_type="pubsub"):
        if client.get("name", "").startswith(RedisBus.reader_name_prefix(prefix)):
            killed += await admin.client_kill_filter(_id=client["id"])
    return killed


# ---- publish / subscribe -------------------------------------------------------------


async def test_a_message_published_on_one_instance_reaches_subscribers_on_another(
    make_bus: BusFactory, subscribe: Callable[..., Awaitable[Subscription]]
) -> None:
    a, b = await make_bus(), await make_bus()
    on_a = await subscribe(a, "commands.pending")
    on_b = await subscribe(b, "commands.pending")

    await b.publish("commands.pending", {"satellite_id": "sat-1", "n": [1, 2]})

    assert await on_a.next() == ("commands.pending", {"satellite_id": "sat-1", "n": [1, 2]})
    assert await on_b.next() == ("commands.pending", {"satellite_id": "sat-1", "n": [1, 2]})
    # b's own subscriber got it once (locally), not again through Redis.
    await b.publish("commands.pending", {"satellite_id": "sat-2"})
    assert await on_b.next() == ("commands.pending", {"satellite_id": "sat-2"})
    assert await on_a.next() == ("commands.pending", {"satellite_id": "sat-2"})
    # Sent by a, the sentinel reaches b through Redis after any echo of b's own message.
    await a.publish("commands.pending", SENTINEL)
    assert await on_b.next() == ("commands.pending", SENTINEL)
    assert a.connected
    assert b.connected


async def test_messages_arrive_in_publishing_order_per_channel(
    make_bus: BusFactory, subscribe: Callable[..., Awaitable[Subscription]]
) -> None:
    a, b = await make_bus(), await make_bus()
    on_a = await subscribe(a, "one", "two")

    for i in range(200):
        await b.publish("one" if i % 3 else "two", {"i": i})

    received = [item for _ in range(200) if (item := await on_a.next()) is not None]
    assert [m["i"] for channel, m in received if channel == "one"] == \
        [i for i in range(200) if i % 3]
    assert [m["i"] for channel, m in received if channel == "two"] == \
        [i for i in range(200) if not i % 3]


async def test_concurrent_publishes_and_batches_each_arrive_once_in_order(
    make_bus: BusFactory, subscribe: Callable[..., Awaitable[Subscription]]
) -> None:
    # Concurrent publishes share pipelined round trips; a publish_many is one PUBLISH:
    # every message still arrives exactly once, each publisher's in its order.
    a, b = await make_bus(), await make_bus()
    on_a = await subscribe(a, "events")
    on_b = await subscribe(b, "events")

    async def publisher(name: str) -> None:
        for i in range(20):
            await b.publish("events", {"from": name, "i": i})

    await asyncio.gather(*(publisher(name) for name in "pqrst"))
    await b.publish_many("events", [{"from": "batch", "i": i} for i in range(50)])

    for subscription in (on_a, on_b):  # on B: its own messages, delivered locally once
        received = [item[1] for _ in range(150) if (item := await subscription.next())]
        for name in "pqrst":
            assert [m["i"] for m in received if m["from"] == name] == list(range(20))
        assert [m["i"] for m in received if m["from"] == "batch"] == list(range(50))
    # Nothing more (no message twice): a third instance's sentinel reaches both through
    # Redis after every earlier message (and any duplicate of one) would have.
    c = await make_bus()
    await c.publish("events", SENTINEL)
    assert await on_a.next() == ("events", SENTINEL)
    assert await on_b.next() == ("events", SENTINEL)
    assert b.publish_failures == 0


async def test_only_the_subscribed_channels_are_delivered(
    make_bus: BusFactory, subscribe: Callable[..., Awaitable[Subscription]]
) -> None:
    a, b = await make_bus(), await make_bus()
    on_a = await subscribe(a, "wanted")

    await b.publish("other", {"n": 1})
    await b.publish("wanted", {"n": 2})

    assert await on_a.next() == ("wanted", {"n": 2})


async def test_a_subscriber_that_falls_behind_is_dropped(
    make_bus: BusFactory
) -> None:
    a, b = await make_bus(queue_size=4), await make_bus()
    slow = a.subscribe(["busy"])
    first = asyncio.ensure_future(anext(slow))
    await asyncio.sleep(0)

    for i in range(20):
        await b.publish("busy", {"i": i})
    await eventually(lambda: _true(a.received >= 20))

    items = [await first]
    items += [item async for item in slow]
    assert items[-1] == ("", DROPPED)
    assert len(items) <= 4
    assert a.subscriber_count() == 0


# ---- outages ---------------------------------------------------------------------------


async def test_a_killed_connection_reconnects_and_tells_subscribers_to_resync(
    make_bus: BusFactory, admin: Redis, prefix: str,
    subscribe: Callable[..., Awaitable[Subscription]],
) -> None:
    a, b = await make_bus(backoff_initial=0.5), await make_bus()
    on_a = await subscribe(a, "x")
    assert a.epoch == 1

    assert await kill_reader(admin, prefix) >= 1
    # The counters, not the short disconnected window (which a slow check could miss).
    await eventually(lambda: _true(a.epoch >= 2 and a.connected))

    assert a.epoch == 2
    assert a.reconnects == 1
    assert await on_a.next() == ("", RESYNC)
    assert await on_a.next() is None  # the subscription ended: re-read, subscribe again
    again = await subscribe(a, "x")
    await b.publish("x", {"after": "reconnect"})
    assert await again.next() == ("x", {"after": "reconnect"})


async def test_while_redis_is_down_publishing_does_not_raise_and_local_delivery_goes_on(
    make_bus: BusFactory, forwarder: RedisForwarder, prefix: str,
    subscribe: Callable[..., Awaitable[Subscription]],
) -> None:
    a = await make_bus(forwarder.url(prefix))
    b = await make_bus()
    on_a = await subscribe(a, "x")
    on_b = await subscribe(b, "x")
    assert a.connected

    await forwarder.stop()
    await eventually(lambda: _true(not a.connected))
    for i in range(5):
        await a.publish("x", {"i": i})  # does not raise

    assert [await on_a.next() for _ in range(5)] == [("x", {"i": i}) for i in range(5)]
    assert a.publish_failures == 5
    assert on_b.items.empty()

    await forwarder.start()
    await eventually(lambda: _true(a.connected))
    assert a.epoch == 2
    assert await on_a.next() == ("", RESYNC)
    again = await subscribe(a, "x")
    await eventually(lambda: _published_through(a, b, again))


async def test_a_connection_that_goes_silent_is_noticed_by_the_ping_and_replaced(
    make_bus: BusFactory, forwarder: RedisForwarder, prefix: str,
    subscribe: Callable[..., Awaitable[Subscription]],
) -> None:
    a = await make_bus(forwarder.url(prefix), health_check_seconds=0.2, connect_timeout=0.5)
    on_a = await subscribe(a, "x")
    assert a.connected

    forwarder.freeze()
    await eventually(lambda: _true(not a.connected))
    forwarder.thaw()
    await eventually(lambda: _true(a.connected))

    assert a.epoch >= 2
    assert await on_a.next() == ("", RESYNC)


async def test_a_bus_that_cannot_reach_redis_starts_anyway_and_connects_later(
    make_bus: BusFactory, forwarder: RedisForwarder, prefix: str,
    subscribe: Callable[..., Awaitable[Subscription]],
) -> None:
    await forwarder.stop()
    a = await make_bus(forwarder.url(prefix), connect_timeout=0.5)
    assert not a.connected
    assert a.epoch == 0
    early = await subscribe(a, "x")
    await a.publish("x", {"local": True})
    assert await early.next() == ("x", {"local": True})

    await forwarder.start()
    await eventually(lambda: _true(a.connected))
    assert await early.next() == ("", RESYNC)  # it may have missed other instances' messages


async def test_create_bus_selects_redis_when_a_url_is_set(redis_url: str) -> None:
    assert isinstance(create_bus(None), InProcessBus)
    bus = create_bus(redis_url)
    assert isinstance(bus, RedisBus)
    await bus.close()  # never started: closing is harmless


async def _published_through(a: RedisBus, b: RedisBus, subscription: Subscription) -> bool:
    """Publish on b until a's subscriber receives it (a's reader is connected again)."""
    await b.publish("x", {"probe": True})
    await asyncio.sleep(0.05)
    while not subscription.items.empty():
        item = subscription.items.get_nowait()
        if item == ("x", {"probe": True}):
            return True
    return False


async def _true(value: bool) -> bool:
    return value


# ---- a server on the Redis bus, another "instance" beside it ---------------------------


@pytest.fixture
async def other_instance(tmp_path: Path, redis_url: str, prefix: str
                         ) -> AsyncIterator[Callable[..., Awaitable[Runtime]]]:
    """A second runtime on the same database (one process: tortoise is shared) with its own
    bus: what it publishes reaches the server only through Redis."""
    runtimes: list[Runtime] = []

    async def factory(bus: RedisBus | InProcessBus | None = None) -> Runtime:
        url = with_channel_prefix(redis_url, prefix)
        rt = build_runtime(make_settings(tmp_path, redis_url=url), bus=bus)
        await rt.bus.start()
        runtimes.append(rt)
        return rt

    yield factory
    for rt in runtimes:
        await rt.bus.close()


async def _poll(http: aiohttp.ClientSession, satellite: TestSatellite, wait: float
                ) -> dict[str, Any]:
    async with http.get(satellite.path("commands"), headers=satellite.headers,
                        params={"wait": str(wait)}) as response:
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body


async def test_a_long_poll_is_woken_by_a_command_created_on_another_instance(
    tmp_path: Path, redis_url: str, prefix: str,
    other_instance: Callable[..., Awaitable[Runtime]],
) -> None:
    settings = make_settings(tmp_path, redis_url=with_channel_prefix(redis_url, prefix),
                             state_refresh_seconds=3600.0)
    async with running(settings) as (rt, http):
        assert isinstance(rt.bus, RedisBus)
        assert rt.fleet.in_sync()
        satellite = await satellite_factory(rt)()
        other = await other_instance()
        held = asyncio.ensure_future(_poll(http, satellite, wait=30))
        await until_poll_held(rt, satellite.id)

        command = await enqueue_command(other, satellite_id=satellite.id,
                                        command_type=CommandType.RESTART, actor=CLI_ACTOR)

        page = await asyncio.wait_for(held, timeout=20)  # the refresh alone takes an hour
        assert [c["id"] for c in page["commands"]] == [command.id]


async def test_a_key_rotated_on_another_instance_is_refused_at_once(
    tmp_path: Path, redis_url: str, prefix: str,
    other_instance: Callable[..., Awaitable[Runtime]],
) -> None:
    settings = make_settings(tmp_path, redis_url=with_channel_prefix(redis_url, prefix),
                             state_refresh_seconds=3600.0)
    async with running(settings) as (rt, http):
        satellite = await satellite_factory(rt)()
        other = await other_instance()
        header = f"Bearer {satellite.api_key}"
        assert (await authenticate_satellite(rt, header, "127.0.0.1")).id == satellite.id

        async with _listening(rt, Channels.SATELLITE_CHANGED) as changed:
            await rotate_satellite_key(other, satellite.id, actor=CLI_ACTOR)
            await asyncio.wait_for(changed.get(), timeout=WAIT_SECONDS)

        await eventually(lambda: _key_refused(rt, header))


async def test_a_satellite_re_registered_on_another_instance_loses_its_old_key_here_at_once(
    tmp_path: Path, redis_url: str, prefix: str,
    other_instance: Callable[..., Awaitable[Runtime]],
) -> None:
    settings = make_settings(tmp_path, redis_url=with_channel_prefix(redis_url, prefix),
                             state_refresh_seconds=3600.0)
    async with running(settings) as (rt, http):
        satellite = await satellite_factory(rt)()  # never heartbeated: offline
        other = await other_instance()
        header = f"Bearer {satellite.api_key}"
        assert (await authenticate_satellite(rt, header, "127.0.0.1")).id == satellite.id
        issued = await issue_registration_token(
            other, scope=TokenScope.GLOBAL, team_id=None, hours=None, satellite_name=None,
            actor=CLI_ACTOR)

        async with _listening(rt, Channels.SATELLITE_CHANGED) as changed:
            result = await register_satellite(
                other, authorization=f"Bearer {issued.token}",
                body=RegistrationRequest(name=satellite.name), address="127.0.0.1")
            await asyncio.wait_for(changed.get(), timeout=WAIT_SECONDS)

        assert result.reregistered
        assert result.satellite_id == satellite.id
        await eventually(lambda: _key_refused(rt, header))
        state = await authenticate_satellite(rt, f"Bearer {result.api_key}", "127.0.0.1")
        assert state.id == satellite.id


async def test_while_the_bus_is_down_long_polls_and_key_checks_use_the_database(
    tmp_path: Path, forwarder: RedisForwarder, prefix: str,
    other_instance: Callable[..., Awaitable[Runtime]],
) -> None:
    settings = make_settings(tmp_path, redis_url=forwarder.url(prefix),
                             state_refresh_seconds=3600.0)
    async with running(settings) as (rt, http):
        satellite = await satellite_factory(rt)()
        header = f"Bearer {satellite.api_key}"
        await authenticate_satellite(rt, header, "127.0.0.1")  # cached
        # Another instance whose messages never arrive (as if published during the outage).
        silent = await other_instance(InProcessBus())

        await forwarder.stop()
        await eventually(lambda: _true(not rt.bus.connected and not rt.fleet.in_sync()))

        held = asyncio.ensure_future(_poll(http, satellite, wait=30))
        await until_poll_held(rt, satellite.id)
        command = await enqueue_command(silent, satellite_id=satellite.id,
                                        command_type=CommandType.RESTART, actor=CLI_ACTOR)
        page = await asyncio.wait_for(held, timeout=20)  # the normal refresh takes an hour
        assert [c["id"] for c in page["commands"]] == [command.id]

        new_key = await rotate_satellite_key(silent, satellite.id, actor=CLI_ACTOR)
        with pytest.raises(Unauthenticated):
            await authenticate_satellite(rt, header, "127.0.0.1")
        state = await authenticate_satellite(rt, f"Bearer {new_key}", "127.0.0.1")
        row = await Satellite.get(id=satellite.id)
        assert state.key_generation == row.key_generation

        await forwarder.start()
        # The server's bus retries with a backoff capped at 5 s: allow several attempts.
        await eventually(lambda: _true(rt.bus.connected and rt.fleet.in_sync()), timeout=30)
        assert rt.bus.epoch == 2


async def _key_refused(rt: Runtime, header: str) -> bool:
    try:
        await authenticate_satellite(rt, header, "127.0.0.1")
    except Unauthenticated:
        return True
    return False


@contextlib.asynccontextmanager
async def _listening(rt: Runtime, channel: str) -> AsyncIterator[asyncio.Queue[Message]]:
    """Messages on `channel` as this runtime's bus delivers them."""
    received: asyncio.Queue[Message] = asyncio.Queue()

    async def pump() -> None:
        async for _, message in rt.bus.subscribe([channel]):
            received.put_nowait(message)

    task = asyncio.ensure_future(pump())
    await asyncio.sleep(0)
    try:
        yield received
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_after_its_connection_is_killed_a_server_resyncs_and_follows_the_bus_again(
    tmp_path: Path, redis_url: str, prefix: str, admin: Redis,
    other_instance: Callable[..., Awaitable[Runtime]],
) -> None:
    settings = make_settings(tmp_path, redis_url=with_channel_prefix(redis_url, prefix),
                             state_refresh_seconds=3600.0)
    async with running(settings) as (rt, http):
        satellite = await satellite_factory(rt)()
        other = await other_instance()

        assert await kill_reader(admin, prefix) >= 1
        await eventually(lambda: _true(rt.bus.epoch == 2 and rt.fleet.in_sync()))

        held = asyncio.ensure_future(_poll(http, satellite, wait=30))
        await until_poll_held(rt, satellite.id)
        command = await enqueue_command(other, satellite_id=satellite.id,
                                        command_type=CommandType.RESTART, actor=CLI_ACTOR)
        page = await asyncio.wait_for(held, timeout=20)  # the refresh alone takes an hour
        assert [c["id"] for c in page["commands"]] == [command.id]
