"""An unmodified DeployStack satellite works against Groundstation (docs/protocol.md §13)."""

from __future__ import annotations

import aiohttp

from app.models import SatelliteCommand
from app.models.enums import (
    CommandPriority,
    CommandStatus,
    CommandType,
    SatelliteStatus,
    TokenScope,
)
from app.runtime import Runtime
from app.services.commands.queue import enqueue_command
from app.services.common.actors import CLI_ACTOR
from app.services.satellites.admin import rotate_satellite_key
from app.services.satellites.tokens import issue_registration_token
from tests.compat.reference_client import ReferenceSatellite
from tests.fixtures.server import RunningServer


async def _global_token(rt: Runtime, bound_to: str | None = None) -> str:
    issued = await issue_registration_token(
        rt, scope=TokenScope.GLOBAL, team_id=None, hours=None, satellite_name=bound_to,
        actor=CLI_ACTOR,
    )
    return issued.token


async def test_reference_client_starts_registers_and_becomes_active(
    server: RunningServer, rt: Runtime
) -> None:
    client = ReferenceSatellite(server.url("").rstrip("/"), "edge-satellite-01",
                                await _global_token(rt))
    async with aiohttp.ClientSession() as session:
        status, answer = await client.register(session)
        assert status == 200
        assert answer["success"] is True
        assert set(answer["satellite"]) == {
            "id", "name", "satellite_type", "team_id", "status", "api_key"
        }
        assert answer["satellite"]["status"] == "inactive"
        assert answer["satellite"]["satellite_type"] == "global"
        assert answer["satellite"]["team_id"] is None
        assert answer["satellite"]["api_key"].startswith("deploystack_satellite_api_global_")
        assert len(answer["satellite"]["api_key"]) == len("deploystack_satellite_api_global_") + 32
        assert "inactive" in answer["message"]

        status, beat = await client.heartbeat(session, satellite_url=client.satellite_url)
        assert status == 200
        assert beat["success"] is True
        assert beat["heartbeat_interval"] == rt.settings.heartbeat_interval
        assert beat["server_time"].endswith("Z")

        status, config = await client.fetch_config(session)
        assert status == 200
        assert set(config) == {"mcp_servers", "satellite_config", "config_version"}
        assert config["mcp_servers"] == {}

    assert client.satellite_id is not None
    state = rt.fleet.get(client.satellite_id)
    assert state is not None
    assert state.status is SatelliteStatus.ACTIVE
    assert state.online


async def test_reference_client_runs_a_command_and_reports_it(
    server: RunningServer, rt: Runtime
) -> None:
    client = ReferenceSatellite(server.url("").rstrip("/"), "edge-satellite-02",
                                await _global_token(rt))
    async with aiohttp.ClientSession() as session:
        await client.start(session)
        assert client.satellite_id is not None
        status, idle = await client.poll(session)
        assert status == 200
        assert idle == {"commands": [], "polling_mode": "slow", "next_poll_interval": 60}

        created = await enqueue_command(
            rt, satellite_id=client.satellite_id, command_type=CommandType.HEALTH_CHECK,
            priority=CommandPriority.HIGH, payload={"check_type": "connectivity"},
            expires_in_seconds=None, actor=CLI_ACTOR,
        )
        status, page = await client.poll(session)
        assert status == 200
        [command] = page["commands"]
        assert command["id"] == created.id
        assert command["command_type"] == "health_check"
        assert command["priority"] == "high"
        assert command["payload"] == {"check_type": "connectivity"}
        assert command["attempt"] == 1
        assert command["lease_expires_at"].endswith("Z")
        assert command["correlation_id"]
        assert (page["polling_mode"], page["next_poll_interval"]) == ("normal", 10)

        status, answer = await client.report(session, created.id, ok=False, error="unreachable")
        assert status == 200
        assert answer["success"] is True
        assert answer["status"] == "failed"

    row = await SatelliteCommand.get(id=created.id)
    assert row.status is CommandStatus.FAILED
    assert row.error_message == "unreachable"


async def test_reference_client_that_lost_its_key_registers_again_by_name(
    server: RunningServer, rt: Runtime
) -> None:
    base = server.url("").rstrip("/")
    first = ReferenceSatellite(base, "edge-satellite-03", await _global_token(rt))
    async with aiohttp.ClientSession() as session:
        await first.start(session)
        again = ReferenceSatellite(
            base, "edge-satellite-03", await _global_token(rt, bound_to="edge-satellite-03")
        )
        await again.start(session)
        assert again.satellite_id == first.satellite_id
        assert again.api_key != first.api_key
        status, _ = await first.heartbeat(session)
        assert status == 401  # the old key stopped working at once


async def test_reference_client_with_a_stale_key_discards_it_and_re_registers(
    server: RunningServer, rt: Runtime
) -> None:
    base = server.url("").rstrip("/")
    client = ReferenceSatellite(base, "edge-satellite-04", await _global_token(rt))
    async with aiohttp.ClientSession() as session:
        await client.start(session)
        assert client.satellite_id is not None
        old_key = client.api_key
        await rotate_satellite_key(rt, client.satellite_id, actor=CLI_ACTOR)
        client.registration_token = await _global_token(rt, bound_to="edge-satellite-04")
        await client.start(session)  # verification heartbeat fails → registers by name
        assert client.api_key != old_key
        assert "POST /api/satellites/register -> 200" in client.log
        status, _ = await client.poll(session)
        assert status == 200
