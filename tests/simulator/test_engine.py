"""The simulated fleet against a real server over a socket: it behaves as satellites do."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from app.config import Settings
from app.models import SatelliteCommand, SatelliteEvent, SatelliteProcess
from app.models.enums import CommandStatus, CommandType, SatelliteStatus, TokenScope
from app.runtime import Runtime
from app.services.commands.queue import enqueue_command
from app.services.common.actors import CLI_ACTOR
from app.services.satellites.admin import rotate_satellite_key
from app.services.satellites.tokens import issue_registration_tokens
from app.simulator.engine import Fleet, Options
from tests.fixtures.mcp import InstallFactory
from tests.fixtures.people import TeamFactory
from tests.fixtures.server import RunningServer, eventually, make_settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, heartbeat_interval=1, offline_threshold=30)


async def tokens(rt: Runtime, count: int) -> tuple[str, ...]:
    issued = await issue_registration_tokens(rt, count=count, scope=TokenScope.GLOBAL,
                                             team_id=None, hours=1, actor=CLI_ACTOR)
    return tuple(token.token for token in issued)


@asynccontextmanager
async def simulating(fleet: Fleet) -> AsyncIterator[Fleet]:
    task = asyncio.create_task(fleet.run())
    try:
        yield fleet
    finally:
        fleet.stop()
        await asyncio.wait_for(task, timeout=30)


def online(rt: Runtime, count: int) -> Any:
    async def check() -> bool:
        states = [s for s in rt.fleet.all() if s.name.startswith("sim-")]
        return len(states) == count and all(
            s.online and s.status is SatelliteStatus.ACTIVE for s in states)
    return check


async def test_a_fleet_registers_heartbeats_runs_commands_and_sends_events(
    server: RunningServer, rt: Runtime, make_team: TeamFactory, install: InstallFactory,
) -> None:
    team = await make_team()
    await install(team.id)
    delivered: list[str] = []
    fleet = Fleet(Options(
        url=server.url("/").rstrip("/"), satellites=8, duration=120,
        tokens=await tokens(rt, 8), events_per_second=40, faults=frozenset({"crash"}),
        on_command=lambda _s, command_id, _t: delivered.append(command_id),
    ))
    async with simulating(fleet):
        await eventually(online(rt, 8))

        async def configured() -> bool:  # each config lists the team's installation
            return all(satellite.entries for satellite in fleet.satellites)
        await eventually(configured)
        target = fleet.satellites[0]
        first_etag = target.etag
        command = await enqueue_command(rt, satellite_id=str(target.satellite_id),
                                        command_type=CommandType.HEALTH_CHECK, actor=CLI_ACTOR)
        configure = await enqueue_command(rt, satellite_id=str(target.satellite_id),
                                          command_type=CommandType.CONFIGURE, actor=CLI_ACTOR)

        async def completed() -> bool:
            statuses = {row.status for row in await SatelliteCommand.filter(
                id__in=[command.id, configure.id])}
            return statuses == {CommandStatus.COMPLETED}
        await eventually(completed)

        async def events_and_processes() -> bool:
            return (await SatelliteEvent.filter(event_type="mcp.tool.executed").exists()
                    and await SatelliteProcess.filter(satellite_id=target.satellite_id).exists())
        await eventually(events_and_processes)
    summary = fleet.summary()

    assert set(delivered) >= {command.id, configure.id}
    assert target.etag == first_etag  # refetched with If-None-Match: 304, same version
    assert summary["errors"] == 0, summary["error_samples"]
    assert summary["bring_up"] is not None
    assert summary["bring_up"]["routes"]["register"]["requests"] == 8
    assert summary["events_rejected"] == 0
    assert summary["all_online_after_seconds"] is not None


async def test_a_refused_key_makes_the_satellite_register_again_with_a_spare_token(
    server: RunningServer, rt: Runtime,
) -> None:
    fleet = Fleet(Options(url=server.url("/").rstrip("/"), satellites=1, duration=120,
                          tokens=await tokens(rt, 2), events_per_second=0))
    async with simulating(fleet):
        await eventually(online(rt, 1))
        satellite = fleet.satellites[0]
        old_key = satellite.api_key
        await rotate_satellite_key(rt, str(satellite.satellite_id), actor=CLI_ACTOR)

        async def registered_again() -> bool:
            state = rt.fleet.get(str(satellite.satellite_id))
            return satellite.api_key != old_key and state is not None and state.online
        await eventually(registered_again)


def test_no_tokens_left_means_no_registration_and_errors_are_summarised() -> None:
    fleet = Fleet(Options(url="http://127.0.0.1:9", satellites=2, duration=1, tokens=("x",)))
    assert fleet.summary()["registered"] == 0
