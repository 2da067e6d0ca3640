"""Offline detection (docs/protocol.md §6, §12 defect 10) and its start-up grace
(docs/operations.md §2, "Cadence")."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from app.bus import Channels
from app.config import Settings
from app.jobs import offline
from app.jobs.runner import scheduled_jobs
from app.models import Satellite
from app.runtime import Runtime
from app.services.common.clock import ManualClock, utcnow
from tests.fixtures.offline import end_start_up_grace, pass_threshold
from tests.fixtures.satellites import SatelliteFactory, TestSatellite, satellite_factory
from tests.fixtures.server import eventually, listening, make_settings, running

HEARTBEAT = {"status": "active", "system_metrics": {"cpu_usage_percent": 1, "memory_usage_mb": 1}}
# Generous: only a failing test waits this long.
WAIT_SECONDS = 15.0
# Published by the test after the job runs it checks: the next message must be this one.
SENTINEL = {"satellite_id": "sentinel", "online": None}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # The scheduled job never runs on its own here: each test runs it (`offline.run_once`)
    # when it means to, with the runtime's clock (`clock`) where it needs time to pass.
    return make_settings(tmp_path, heartbeat_interval=1, offline_threshold=1,
                         jobs_interval_seconds=3600)


async def beat(http: aiohttp.ClientSession, satellite: TestSatellite) -> None:
    async with http.post(satellite.path("heartbeat"), data=json.dumps(HEARTBEAT),
                         headers=satellite.headers) as response:
        assert response.status == 200


def test_offline_detection_is_a_scheduled_job() -> None:
    assert {"offline", "retention"} <= {job.name for job in scheduled_jobs()}


async def test_silent_satellite_goes_offline_and_its_next_heartbeat_brings_it_back(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, rt: Runtime,
    clock: ManualClock,
) -> None:
    end_start_up_grace(rt)
    satellite = await make_satellite()

    async with listening(rt, Channels.SATELLITE_STATUS) as received:
        await beat(http, satellite)
        came_online = await asyncio.wait_for(received.get(), WAIT_SECONDS)
        await offline.run_once(rt)  # not silent for a threshold yet: nothing happens
        pass_threshold(clock, rt)  # silent for longer than the threshold
        await offline.run_once(rt)
        went_offline = await asyncio.wait_for(received.get(), WAIT_SECONDS)
        await offline.run_once(rt)
        await offline.run_once(rt)
        await rt.bus.publish(Channels.SATELLITE_STATUS, SENTINEL)
        # Announced once, not on every run of the job: the next message is the sentinel.
        assert await asyncio.wait_for(received.get(), WAIT_SECONDS) == SENTINEL
        await beat(http, satellite)
        back_online = await asyncio.wait_for(received.get(), WAIT_SECONDS)

    assert (came_online["satellite_id"], came_online["online"]) == (satellite.id, True)
    assert (went_offline["satellite_id"], went_offline["online"]) == (satellite.id, False)
    assert went_offline["status"] == went_offline["previous_status"] == "active"
    assert (back_online["satellite_id"], back_online["online"]) == (satellite.id, True)
    state = rt.fleet.get(satellite.id)
    assert state is not None
    assert state.online  # the job runs only when this test calls it: nothing flips it back


async def test_offline_state_is_persisted(tmp_path: Path, clock: ManualClock) -> None:
    # The job runs on its schedule here (every 50 ms): what it decides reaches the row.
    settings = make_settings(tmp_path, heartbeat_interval=1, offline_threshold=1,
                             jobs_interval_seconds=0.05)
    async with running(settings, clock) as (rt, http):
        end_start_up_grace(rt)
        satellite = await satellite_factory(rt)()
        await beat(http, satellite)
        assert await rt.heartbeats.flush()
        assert (await Satellite.get(id=satellite.id)).online

        async def offline_stored() -> bool:
            return not (await Satellite.get(id=satellite.id)).online

        pass_threshold(clock, rt)  # the scheduled job now sees a silent satellite
        await eventually(offline_stored, timeout=WAIT_SECONDS)
        state = rt.fleet.get(satellite.id)
        assert state is not None
        assert not state.online


async def test_a_heartbeat_another_instance_stored_keeps_the_satellite_online(
    tmp_path: Path,
) -> None:
    # The job runs only when the test calls it.
    settings = make_settings(tmp_path, heartbeat_interval=1, offline_threshold=1,
                             jobs_interval_seconds=3600)
    async with running(settings) as (rt, http):
        end_start_up_grace(rt)
        satellite = await satellite_factory(rt)()
        await beat(http, satellite)
        await asyncio.sleep(1.1)  # silent here for longer than the threshold...
        assert await rt.heartbeats.flush()
        recent = utcnow()
        await Satellite.filter(id=satellite.id).update(last_heartbeat_at=recent)  # ...not there

        await offline.run_once(rt)

        state = rt.fleet.get(satellite.id)
        assert state is not None
        assert state.online
        assert state.last_heartbeat_at == recent
        assert (await Satellite.get(id=satellite.id)).online


async def test_restart_waits_one_threshold_before_marking_anything_offline(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, heartbeat_interval=1, offline_threshold=1,
                             jobs_interval_seconds=3600)
    async with running(settings) as (rt, http):
        satellite = await satellite_factory(rt)()
        await beat(http, satellite)
        assert await rt.heartbeats.flush()
        # The fleet was online when the server went down, an hour ago.
        await Satellite.filter(id=satellite.id).update(
            last_heartbeat_at=utcnow() - timedelta(hours=1), online=True
        )

    # The restarted server's clock stands still until the test moves it, so any run the
    # scheduler makes at start-up is inside the grace period too.
    clock = ManualClock()
    async with running(settings, clock) as (rt, _):
        state = rt.fleet.get(satellite.id)
        assert state is not None
        threshold = settings.offline_threshold
        for elapsed in (0.0, 0.5 * threshold, 0.99 * threshold):  # job runs inside the grace
            clock.advance(rt.started_monotonic + elapsed - clock.monotonic())
            await offline.run_once(rt)
            assert state.online
            assert (await Satellite.get(id=satellite.id)).online

        clock.advance(rt.started_monotonic + threshold - clock.monotonic())  # one threshold on
        await offline.run_once(rt)
        assert not state.online
        assert not (await Satellite.get(id=satellite.id)).online


async def test_nothing_goes_offline_during_the_grace_period(
    make_satellite: SatelliteFactory, rt: Runtime
) -> None:
    satellite = await make_satellite()
    state = rt.fleet.get(satellite.id)
    assert state is not None
    state.online, state.last_heartbeat_at = True, utcnow() - timedelta(days=1)

    rt.started_monotonic = rt.clock.monotonic()  # the server has just started
    await offline.run_once(rt)  # (its grace check runs before its first await)
    assert state.online

    end_start_up_grace(rt)
    await offline.run_once(rt)
    assert not state.online
