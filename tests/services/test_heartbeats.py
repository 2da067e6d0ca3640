"""The heartbeat buffer and flusher: batched persistence, bounded buffer, hiccups, publishing."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from app.bus import Channels, Message
from app.config import Settings
from app.models import Satellite, SatelliteHeartbeat
from app.models.enums import SatelliteStatus
from app.runtime import Runtime
from tests.fixtures.satellites import SatelliteFactory, TestSatellite, satellite_factory
from tests.fixtures.server import eventually, make_settings, running

Json = dict[str, Any]


def heartbeat_body(cpu: float = 10.0, **overrides: Any) -> Json:
    return {"status": "active",
            "system_metrics": {"cpu_usage_percent": cpu, "memory_usage_mb": 128},
            **overrides}


async def send(http: aiohttp.ClientSession, satellite: TestSatellite, body: Json) -> int:
    async with http.post(satellite.path("heartbeat"), data=json.dumps(body),
                         headers=satellite.headers) as response:
        return response.status


@asynccontextmanager
async def listening(rt: Runtime, channel: str) -> AsyncIterator[asyncio.Queue[Message]]:
    received: asyncio.Queue[Message] = asyncio.Queue()

    async def pump() -> None:
        async for _, message in rt.bus.subscribe([channel]):
            received.put_nowait(message)

    task = asyncio.create_task(pump())
    await asyncio.sleep(0.01)  # subscribed before anything is published
    try:
        yield received
    finally:
        task.cancel()


@contextmanager
def database_locked(settings: Settings) -> Iterator[None]:
    """Another process holds the SQLite write lock: a real database hiccup."""
    assert settings.sqlite_path is not None
    other = sqlite3.connect(settings.sqlite_path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


def flush_failures(rt: Runtime) -> float:
    return rt.metrics.registry.get_sample_value(
        "groundstation_heartbeat_flush_failures_total") or 0.0


def hiccup_settings(tmp_path: Path, **overrides: Any) -> Settings:
    # A short busy timeout makes a locked database fail a flush at once.
    url = f"sqlite://{tmp_path / 'groundstation.db'}?busy_timeout=50"
    return make_settings(tmp_path, database_url=url, **overrides)


async def test_flush_writes_telemetry_without_counting_as_an_administrative_change(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, rt: Runtime
) -> None:
    satellite = await make_satellite()
    before = await Satellite.get(id=satellite.id)

    await send(http, satellite, heartbeat_body(cpu=33, version="2.0.0", error_count=4,
                                               processes=[{"id": "a"}, {"id": "b"}]))
    await rt.heartbeats.flush()

    after = await Satellite.get(id=satellite.id)
    assert after.last_heartbeat_at is not None
    assert after.key_last_used_at == after.last_heartbeat_at
    assert after.online is True
    assert after.latest_metrics == {"cpu_usage_percent": 33, "memory_usage_mb": 128}
    assert (after.version, after.error_count, after.process_count) == ("2.0.0", 4, 2)
    assert after.revision == before.revision
    assert after.updated_at == before.updated_at


async def test_every_heartbeat_leaves_a_history_row(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, rt: Runtime
) -> None:
    satellite = await make_satellite()

    for cpu in (5, 15, 25):
        assert await send(http, satellite, heartbeat_body(cpu=cpu)) == 200
    await rt.heartbeats.flush()

    rows = await SatelliteHeartbeat.filter(satellite_id=satellite.id).order_by("timestamp")
    assert [row.cpu_usage_percent for row in rows] == [5, 15, 25]
    assert all(row.memory_usage_mb == 128 for row in rows)


async def test_heartbeats_reach_the_database_without_an_explicit_flush(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite()

    await send(http, satellite, heartbeat_body())

    async def stored() -> bool:
        return await SatelliteHeartbeat.filter(satellite_id=satellite.id).exists()

    await eventually(stored)


async def test_database_hiccup_delays_persistence_but_never_fails_a_heartbeat(
    tmp_path: Path,
) -> None:
    settings = hiccup_settings(tmp_path)
    async with running(settings) as (rt, http):
        satellite = await satellite_factory(rt)()
        with database_locked(settings):
            assert await send(http, satellite, heartbeat_body(cpu=42)) == 200

            async def failed_once() -> bool:
                return flush_failures(rt) >= 1

            await eventually(failed_once)
            assert rt.heartbeats.pending_history == 1  # kept for the next try

        async def persisted() -> bool:
            return await SatelliteHeartbeat.filter(satellite_id=satellite.id).exists()

        await eventually(persisted)
        row = await Satellite.get(id=satellite.id)
        assert row.latest_metrics["cpu_usage_percent"] == 42


def history_dropped(rt: Runtime) -> float:
    return rt.metrics.registry.get_sample_value(
        "groundstation_heartbeat_history_dropped_total") or 0.0


async def history(satellite: TestSatellite) -> list[float | None]:
    rows = await SatelliteHeartbeat.filter(satellite_id=satellite.id).order_by("timestamp")
    return [row.cpu_usage_percent for row in rows]


async def test_full_buffer_drops_the_oldest_history_rows(tmp_path: Path) -> None:
    # Flushed only by the test, so what is buffered does not depend on when a flusher wakes.
    settings = make_settings(tmp_path, flush_buffer_limit=3, flush_interval_seconds=3600)
    async with running(settings) as (rt, http):
        satellite = await satellite_factory(rt)()
        for cpu in (1, 2, 3, 4, 5):
            assert await send(http, satellite, heartbeat_body(cpu=cpu)) == 200
        assert rt.heartbeats.pending_history == 3
        assert history_dropped(rt) == 2

        assert await rt.heartbeats.flush()
        assert await history(satellite) == [3, 4, 5]
        assert (await Satellite.get(id=satellite.id)).latest_metrics["cpu_usage_percent"] == 5


async def test_a_failed_flush_keeps_its_rows_within_the_limit(tmp_path: Path) -> None:
    settings = hiccup_settings(tmp_path, flush_buffer_limit=3, flush_interval_seconds=3600)
    async with running(settings) as (rt, http):
        satellite = await satellite_factory(rt)()
        for cpu in (1, 2):
            assert await send(http, satellite, heartbeat_body(cpu=cpu)) == 200
        with database_locked(settings):
            assert not await rt.heartbeats.flush()  # the lock outlasts the busy timeout
        assert rt.heartbeats.pending_history == 2  # put back for the next try
        for cpu in (3, 4, 5):
            assert await send(http, satellite, heartbeat_body(cpu=cpu)) == 200
        assert rt.heartbeats.pending_history == 3
        assert history_dropped(rt) == 2

        assert await rt.heartbeats.flush()
        assert await history(satellite) == [3, 4, 5]
        assert flush_failures(rt) == 1


async def test_pending_heartbeats_are_written_at_shutdown(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, flush_interval_seconds=3600)
    async with running(settings) as (rt, http):
        satellite = await satellite_factory(rt)()
        assert await send(http, satellite, heartbeat_body(cpu=77)) == 200
        assert rt.heartbeats.pending_history == 1

    # Read back through a connection of our own: the server's are closed.
    if settings.is_sqlite:
        assert settings.sqlite_path is not None
        with sqlite3.connect(settings.sqlite_path) as database:
            (count,) = database.execute(
                "SELECT COUNT(*) FROM satellite_heartbeats WHERE satellite_id = ?",
                (satellite.id,),
            ).fetchone()
    else:
        other = await asyncpg.connect(settings.database_url)
        try:
            count = await other.fetchval(
                "SELECT COUNT(*) FROM satellite_heartbeats WHERE satellite_id = $1",
                satellite.id,
            )
        finally:
            await other.close()
    assert count == 1


async def test_activation_and_coming_online_are_published_once(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, rt: Runtime
) -> None:
    satellite = await make_satellite(active=False)

    async with listening(rt, Channels.SATELLITE_STATUS) as received:
        await send(http, satellite, heartbeat_body())
        await send(http, satellite, heartbeat_body())  # already active and online: silent
        message = await asyncio.wait_for(received.get(), 15)
        sentinel = {"satellite_id": "sentinel"}
        await rt.bus.publish(Channels.SATELLITE_STATUS, sentinel)
        assert await asyncio.wait_for(received.get(), 15) == sentinel  # nothing in between

    assert message["satellite_id"] == satellite.id
    assert message["status"] == SatelliteStatus.ACTIVE
    assert message["previous_status"] == SatelliteStatus.INACTIVE
    assert message["online"] is True
    assert message["at"].endswith("Z")
    assert "team_id" in message


async def test_every_heartbeat_is_published_with_its_metrics(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, rt: Runtime
) -> None:
    satellite = await make_satellite()
    body = heartbeat_body(cpu=250, processes=[{"id": "p"}])
    body["system_metrics"]["disk_usage_percent"] = 12

    async with listening(rt, Channels.SATELLITE_HEARTBEAT) as received:
        await send(http, satellite, body)
        message = await asyncio.wait_for(received.get(), 15)

    assert message == {
        "satellite_id": satellite.id,
        "team_id": None,
        "timestamp": message["timestamp"],
        "cpu_usage_percent": 100,
        "memory_usage_mb": 128,
        "disk_usage_percent": 12,
        "process_count": 1,
        "status": "active",
    }


async def test_heartbeats_are_counted_in_metrics(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, rt: Runtime
) -> None:
    satellite = await make_satellite()

    for _ in range(3):
        await send(http, satellite, heartbeat_body())

    assert rt.metrics.registry.get_sample_value("groundstation_heartbeats_total") == 3


async def test_repairs_are_logged_without_repeating_every_heartbeat(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    satellite = await make_satellite()
    caplog.set_level(logging.WARNING, logger="app.services.fleet.heartbeats")

    for _ in range(3):
        await send(http, satellite, heartbeat_body(cpu=180))  # a busy multi-core host
    await send(http, satellite, heartbeat_body(cpu=180, status="rebooting"))

    repaired = [record for record in caplog.records
                if record.getMessage() == "heartbeat repaired instead of refused"]
    assert [record.repairs for record in repaired] == [  # type: ignore[attr-defined]
        ["system_metrics.cpu_usage_percent: clamped to 0..100"],
        ["status: unknown value stored as unknown",
         "system_metrics.cpu_usage_percent: clamped to 0..100"],
    ]
    assert all(record.satellite_id == satellite.id  # type: ignore[attr-defined]
               for record in repaired)
    assert satellite.api_key not in caplog.text
