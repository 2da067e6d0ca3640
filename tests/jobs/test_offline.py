"""Offline detection (protocol.md §6, defect 10) and its start-up grace (design.md §6)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from app.bus import Channels
from app.config import Settings
from app.jobs import offline
from app.jobs.runner import scheduled_jobs
from app.models import Satellite
from app.services.clock import utcnow
from app.services.runtime import Runtime
from tests.fixtures.satellites import SatelliteFactory, TestSatellite, satellite_factory
from tests.fixtures.server import eventually, listening, make_settings, running

HEARTBEAT = {"status": "active", "system_metrics": {"cpu_usage_percent": 1, "memory_usage_mb": 1}}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, heartbeat_interval=1, offline_threshold=1,
                         jobs_interval_seconds=0.05)


async def beat(http: aiohttp.ClientSession, satellite: TestSatellite) -> None:
    async with http.post(satellite.path("heartbeat"), data=json.dumps(HEARTBEAT),
                         headers=satellite.headers) as response:
        assert response.status == 200


def end_start_up_grace(rt: Runtime) -> None:
    """As if the server had started long ago (the grace has its own test below)."""
    rt.started_monotonic = time.monotonic() - 10 * rt.settings.offline_threshold


def test_offline_detection_is_a_scheduled_job() -> None:
    assert {"offline", "retention"} <= {job.name for job in scheduled_jobs()}


async def test_silent_satellite_goes_offline_and_its_next_heartbeat_brings_it_back(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, rt: Runtime
) -> None:
    end_start_up_grace(rt)
    satellite = await make_satellite()

    async with listening(rt, Channels.SATELLITE_STATUS) as received:
        await beat(http, satellite)
        came_online = await asyncio.wait_for(received.get(), 2)
        went_offline = await asyncio.wait_for(received.get(), 3)  # after ~1 s of silence
        await asyncio.sleep(0.2)
        assert received.empty()  # announced once, not on every run of the job
        await beat(http, satellite)
        back_online = await asyncio.wait_for(received.get(), 2)

    assert (came_online["satellite_id"], came_online["online"]) == (satellite.id, True)
    assert (went_offline["satellite_id"], went_offline["online"]) == (satellite.id, False)
    assert went_offline["status"] == went_offline["previous_status"] == "active"
    assert (back_online["satellite_id"], back_online["online"]) == (satellite.id, True)
    state = rt.fleet.get(satellite.id)
    assert state is not None
    assert state.online


async def test_offline_state_is_persisted(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, rt: Runtime
) -> None:
    end_start_up_grace(rt)
    satellite = await make_satellite()
    await beat(http, satellite)

    async def online_stored() -> bool:
        return (await Satellite.get(id=satellite.id)).online

    async def offline_stored() -> bool:
        return not await online_stored()

    await eventually(online_stored)
    await eventually(offline_stored)
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
                             jobs_interval_seconds=0.05)
    async with running(settings) as (rt, http):
        satellite = await satellite_factory(rt)()
        await beat(http, satellite)
        assert await rt.heartbeats.flush()
        # The fleet was online when the server went down, an hour ago.
        await Satellite.filter(id=satellite.id).update(
            last_heartbeat_at=utcnow() - timedelta(hours=1), online=True
        )

    async with running(settings) as (rt, _):
        started = time.monotonic()
        state = rt.fleet.get(satellite.id)
        assert state is not None
        await asyncio.sleep(0.6)  # many job runs, all inside the grace period
        assert state.online
        assert (await Satellite.get(id=satellite.id)).online

        async def offline_now() -> bool:
            return not state.online

        await eventually(offline_now)
        assert time.monotonic() - started >= 0.9 * settings.offline_threshold


async def test_nothing_goes_offline_during_the_grace_period(
    make_satellite: SatelliteFactory, rt: Runtime
) -> None:
    rt.started_monotonic = time.monotonic()  # the server has just started
    satellite = await make_satellite()
    state = rt.fleet.get(satellite.id)
    assert state is not None
    state.online, state.last_heartbeat_at = True, utcnow() - timedelta(days=1)

    await offline.run_once(rt)
    assert state.online

    end_start_up_grace(rt)
    await offline.run_once(rt)
    assert not state.online
