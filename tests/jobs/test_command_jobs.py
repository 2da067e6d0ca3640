"""The command queue jobs: lapsed leases and undelivered commands past their expiry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from app.bus import Channels
from app.jobs.runner import scheduled_jobs
from app.main import create_app
from app.models import SatelliteCommand
from app.models.enums import CommandStatus, CommandType, SatelliteStatus, SatelliteType
from app.rest.context import RUNTIME_KEY
from app.services.actors import CLI_ACTOR
from app.services.commands import (
    LeaseSweep,
    enqueue_command,
    expire_undelivered,
    poll_commands,
    record_command_result,
    requeue_expired_leases,
)
from app.services.fleet import SatelliteState
from app.services.runtime import Runtime
from app.services.satellites import create_satellite
from tests.fixtures.server import make_settings

LEASE_SECONDS = 1
LAPSE = LEASE_SECONDS + 0.05


@pytest.fixture
async def short_lease_rt(tmp_path: Path) -> AsyncIterator[Runtime]:
    """A server with 1 s leases whose own jobs stay out of the way (hour-long interval)."""
    settings = make_settings(
        tmp_path, command_lease_seconds=LEASE_SECONDS, jobs_interval_seconds=3600
    )
    app = create_app(settings)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield app[RUNTIME_KEY]
    finally:
        await server.close()


async def active_state(rt: Runtime) -> SatelliteState:
    row, _ = await create_satellite(
        rt, name=f"jobs-{id(rt)}-{len(rt.fleet)}", satellite_type=SatelliteType.GLOBAL,
        team_id=None,
    )
    state = await rt.fleet.apply_admin_change(row.id, "test", status=SatelliteStatus.ACTIVE)
    assert state is not None
    return state


async def enqueue(rt: Runtime, state: SatelliteState, **options: Any) -> SatelliteCommand:
    return await enqueue_command(
        rt, satellite_id=state.id, command_type=CommandType.RESTART, actor=CLI_ACTOR, **options
    )


async def deliver(rt: Runtime, state: SatelliteState) -> list[str]:
    page = await poll_commands(rt, state, limit=50, wait=0)
    return [command["id"] for command in page.commands]


def has_pending(state: SatelliteState) -> bool:
    return state.has_pending


def pending_gauge(rt: Runtime) -> float | None:
    return rt.metrics.registry.get_sample_value("groundstation_pending_commands")


async def status_of(command: SatelliteCommand) -> CommandStatus:
    return (await SatelliteCommand.get(id=command.id)).status


def test_command_jobs_are_scheduled_in_the_server() -> None:
    names = {job.name for job in scheduled_jobs()}

    assert {"commands.requeue_expired_leases", "commands.expire_undelivered"} <= names


async def test_lapsed_lease_goes_back_to_pending_and_wakes_the_satellite(
    short_lease_rt: Runtime,
) -> None:
    rt = short_lease_rt
    state = await active_state(rt)
    command = await enqueue(rt, state)
    assert await deliver(rt, state) == [command.id]
    assert await deliver(rt, state) == []  # settles the pending flag (the bus echo re-marks it)
    assert not has_pending(state)
    received: list[tuple[str, dict[str, Any]]] = []

    async def listen() -> None:
        async for item in rt.bus.subscribe([Channels.COMMAND_UPDATED, Channels.COMMANDS_PENDING]):
            received.append(item)

    listener = asyncio.create_task(listen())
    await asyncio.sleep(LAPSE)
    sweep = await requeue_expired_leases(rt)
    await asyncio.sleep(0.01)
    listener.cancel()

    row = await SatelliteCommand.get(id=command.id)
    assert sweep == LeaseSweep(requeued=1)
    assert row.status is CommandStatus.PENDING
    assert row.lease_expires_at is None
    assert has_pending(state)
    assert (Channels.COMMANDS_PENDING, {"satellite_id": state.id}) in received
    assert any(message["command_id"] == command.id and message["status"] == "pending"
               for channel, message in received if channel == Channels.COMMAND_UPDATED)
    assert pending_gauge(rt) == 1


async def test_lease_sweep_is_idempotent_and_leaves_live_leases_alone(
    short_lease_rt: Runtime,
) -> None:
    rt = short_lease_rt
    state = await active_state(rt)
    lapsing = await enqueue(rt, state)
    await deliver(rt, state)
    await asyncio.sleep(LAPSE)
    fresh = await enqueue(rt, state)
    await deliver(rt, state)

    first = await requeue_expired_leases(rt)
    second = await requeue_expired_leases(rt)

    assert first == LeaseSweep(requeued=1)
    assert second == LeaseSweep()
    assert await status_of(lapsing) is CommandStatus.PENDING
    assert await status_of(fresh) is CommandStatus.ACKNOWLEDGED


async def test_lapsed_lease_with_no_attempts_left_fails_with_a_reason(
    short_lease_rt: Runtime,
) -> None:
    rt = short_lease_rt
    state = await active_state(rt)
    command = await enqueue(rt, state, max_attempts=1)
    await deliver(rt, state)
    await asyncio.sleep(LAPSE)

    sweep = await requeue_expired_leases(rt)

    row = await SatelliteCommand.get(id=command.id)
    assert sweep == LeaseSweep(failed=1)
    assert row.status is CommandStatus.FAILED
    assert row.error_message == "lease expired after 1 attempt"
    assert await deliver(rt, state) == []


async def test_satellite_result_replaces_a_failure_decided_by_the_server(
    short_lease_rt: Runtime,
) -> None:
    rt = short_lease_rt
    state = await active_state(rt)
    command = await enqueue(rt, state, max_attempts=1)
    await deliver(rt, state)
    await asyncio.sleep(LAPSE)
    await requeue_expired_leases(rt)

    outcome = await record_command_result(
        rt, state, command_id=command.id, status=CommandStatus.COMPLETED, result={"ok": True},
        error_message=None,
    )

    row = await SatelliteCommand.get(id=command.id)
    assert (outcome.status, outcome.late) == (CommandStatus.COMPLETED, True)
    assert row.status is CommandStatus.COMPLETED
    assert row.error_message is None


async def test_lease_lapsing_after_the_expiry_ends_the_command_expired(
    short_lease_rt: Runtime,
) -> None:
    rt = short_lease_rt
    state = await active_state(rt)
    command = await enqueue(rt, state, expires_in_seconds=1)
    await deliver(rt, state)
    await asyncio.sleep(LAPSE)

    sweep = await requeue_expired_leases(rt)

    assert sweep == LeaseSweep(expired=1)
    assert await status_of(command) is CommandStatus.EXPIRED
    assert await deliver(rt, state) == []


async def test_result_before_the_sweep_wins_over_the_lapsed_lease(
    short_lease_rt: Runtime,
) -> None:
    rt = short_lease_rt
    state = await active_state(rt)
    command = await enqueue(rt, state)
    await deliver(rt, state)
    await asyncio.sleep(LAPSE)
    await record_command_result(rt, state, command_id=command.id,
                                status=CommandStatus.COMPLETED, result=None, error_message=None)

    sweep = await requeue_expired_leases(rt)

    assert sweep == LeaseSweep()
    assert await status_of(command) is CommandStatus.COMPLETED


async def test_undelivered_command_past_its_expiry_becomes_expired(
    short_lease_rt: Runtime,
) -> None:
    rt = short_lease_rt
    state = await active_state(rt)
    stale = await enqueue(rt, state, expires_in_seconds=1)
    await asyncio.sleep(LAPSE)
    fresh = await enqueue(rt, state)

    expired = await expire_undelivered(rt)
    again = await expire_undelivered(rt)

    row = await SatelliteCommand.get(id=stale.id)
    assert (expired, again) == (1, 0)
    assert row.status is CommandStatus.EXPIRED
    assert row.attempts == 0
    assert await status_of(fresh) is CommandStatus.PENDING
    assert pending_gauge(rt) == 1
    assert await deliver(rt, state) == [fresh.id]
