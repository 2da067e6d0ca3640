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
from app.models import SatelliteCommand
from app.models.enums import CommandStatus, CommandType, SatelliteStatus, SatelliteType
from app.rest.context import RUNTIME_KEY
from app.runtime import Runtime
from app.services.commands.claims import poll_commands
from app.services.commands.queue import enqueue_command
from app.services.commands.results import record_command_result
from app.services.commands.sweeps import LeaseSweep, expire_undelivered, requeue_expired_leases
from app.services.common.actors import CLI_ACTOR
from app.services.common.clock import ManualClock
from app.services.fleet.state import SatelliteState
from app.services.satellites.admin import create_satellite
from tests.fixtures.server import controllable_app, listening, make_settings

LEASE_SECONDS = 1
LAPSE = LEASE_SECONDS + 0.05
# Generous: only a failing test waits this long.
WAIT_SECONDS = 15.0
SENTINEL = {"satellite_id": "sentinel"}


@pytest.fixture
async def short_lease_rt(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Runtime]:
    """A server with 1 s leases on the test's clock whose own jobs and fleet refresh stay
    out of the way (hour-long intervals): only the test runs a sweep.

    The runtime's clock (the shared `clock` fixture) stands still until a test moves
    it (no sleeping), so a lease lapses exactly when the test means it to, however
    slow the database is."""
    settings = make_settings(
        tmp_path, command_lease_seconds=LEASE_SECONDS, jobs_interval_seconds=3600,
        state_refresh_seconds=3600,
    )
    app = controllable_app(settings, clock)
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
    short_lease_rt: Runtime, clock: ManualClock,
) -> None:
    rt = short_lease_rt
    state = await active_state(rt)
    command = await enqueue(rt, state)
    assert await deliver(rt, state) == [command.id]
    assert await deliver(rt, state) == []  # settles the pending flag (the bus echo re-marks it)
    assert not has_pending(state)
    received: list[tuple[str, dict[str, Any]]] = []

    async with listening(rt, Channels.COMMAND_UPDATED) as updates, \
            listening(rt, Channels.COMMANDS_PENDING) as wakeups:
        clock.advance(LAPSE)
        sweep = await requeue_expired_leases(rt)
        # Everything the sweep published arrives before these.
        await rt.bus.publish(Channels.COMMAND_UPDATED, SENTINEL)
        await rt.bus.publish(Channels.COMMANDS_PENDING, SENTINEL)
        for channel, queue in ((Channels.COMMAND_UPDATED, updates),
                               (Channels.COMMANDS_PENDING, wakeups)):
            while (message := await asyncio.wait_for(queue.get(), WAIT_SECONDS)) != SENTINEL:
                received.append((channel, message))

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
    short_lease_rt: Runtime, clock: ManualClock,
) -> None:
    rt = short_lease_rt
    state = await active_state(rt)
    lapsing = await enqueue(rt, state)
    await deliver(rt, state)
    clock.advance(LAPSE)
    fresh = await enqueue(rt, state)
    await deliver(rt, state)

    first = await requeue_expired_leases(rt)
    second = await requeue_expired_leases(rt)

    assert first == LeaseSweep(requeued=1)
    assert second == LeaseSweep()
    assert await status_of(lapsing) is CommandStatus.PENDING
    assert await status_of(fresh) is CommandStatus.ACKNOWLEDGED


async def test_lapsed_lease_with_no_attempts_left_fails_with_a_reason(
    short_lease_rt: Runtime, clock: ManualClock,
) -> None:
    rt = short_lease_rt
    state = await active_state(rt)
    command = await enqueue(rt, state, max_attempts=1)
    await deliver(rt, state)
    clock.advance(LAPSE)

    sweep = await requeue_expired_leases(rt)

    row = await SatelliteCommand.get(id=command.id)
    assert sweep == LeaseSweep(failed=1)
    assert row.status is CommandStatus.FAILED
    assert row.error_message == "lease expired after 1 attempt"
    assert await deliver(rt, state) == []


async def test_satellite_result_replaces_a_failure_decided_by_the_server(
    short_lease_rt: Runtime, clock: ManualClock,
) -> None:
    rt = short_lease_rt
    state = await active_state(rt)
    command = await enqueue(rt, state, max_attempts=1)
    await deliver(rt, state)
    clock.advance(LAPSE)
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
    short_lease_rt: Runtime, clock: ManualClock,
) -> None:
    rt = short_lease_rt
    state = await active_state(rt)
    command = await enqueue(rt, state, expires_in_seconds=1)
    await deliver(rt, state)
    clock.advance(LAPSE)

    sweep = await requeue_expired_leases(rt)

    assert sweep == LeaseSweep(expired=1)
    assert await status_of(command) is CommandStatus.EXPIRED
    assert await deliver(rt, state) == []


async def test_result_before_the_sweep_wins_over_the_lapsed_lease(
    short_lease_rt: Runtime, clock: ManualClock,
) -> None:
    rt = short_lease_rt
    state = await active_state(rt)
    command = await enqueue(rt, state)
    await deliver(rt, state)
    clock.advance(LAPSE)
    await record_command_result(rt, state, command_id=command.id,
                                status=CommandStatus.COMPLETED, result=None, error_message=None)

    sweep = await requeue_expired_leases(rt)

    assert sweep == LeaseSweep()
    assert await status_of(command) is CommandStatus.COMPLETED


async def test_undelivered_command_past_its_expiry_becomes_expired(
    short_lease_rt: Runtime, clock: ManualClock,
) -> None:
    rt = short_lease_rt
    state = await active_state(rt)
    stale = await enqueue(rt, state, expires_in_seconds=1)
    clock.advance(LAPSE)
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
