"""An unmodified DeployStack satellite works against Groundstation (docs/protocol.md §13)."""

from __future__ import annotations

import aiohttp
import pytest

from app.models import AuditEntry, RegistrationToken, SatelliteCommand
from app.models.enums import (
    CommandPriority,
    CommandStatus,
    CommandType,
    GlobalRole,
    SatelliteStatus,
    TokenScope,
)
from app.runtime import Runtime
from app.services.commands.queue import enqueue_command
from app.services.common.actors import CLI_ACTOR
from app.services.common.clock import ManualClock
from app.services.satellites.admin import rotate_satellite_key
from app.services.satellites.tokens import issue_registration_token
from tests.compat.reference_client import ReferenceSatellite
from tests.fixtures.graphql import ClientFactory
from tests.fixtures.server import RunningServer

ROTATE = "mutation($id: ID!) { rotateSatelliteKey(id: $id) { apiKey satellite { id } } }"


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


async def test_reference_client_whose_key_an_operator_rotated_recovers_with_its_unbound_token(
    server: RunningServer, rt: Runtime, graphql_as: ClientFactory
) -> None:
    """Registered and heartbeating; an operator rotates its key (GraphQL) and does not
    hand it over; the client's heartbeat gets 401, so at its next start it discards its
    key and registers by name with the unbound token of its environment (a fresh one,
    since the first was used): same id, new key, heartbeats again."""
    base = server.url("").rstrip("/")
    client = ReferenceSatellite(base, "edge-satellite-05", await _global_token(rt))
    admin = await graphql_as(global_role=GlobalRole.GLOBAL_ADMIN)
    async with aiohttp.ClientSession() as session:
        await client.start(session)  # registers, heartbeats, fetches its config
        satellite_id, old_key = client.satellite_id, client.api_key
        assert satellite_id is not None
        status, _ = await client.heartbeat(session)
        assert status == 200  # live

        rotated = (await admin.data(ROTATE, {"id": satellite_id}))["rotateSatelliteKey"]
        assert rotated["satellite"] == {"id": satellite_id}
        status, _ = await client.heartbeat(session)
        assert status == 401

        client.registration_token = await _global_token(rt)  # unbound, same scope
        client.log.clear()
        await client.start(session)
        assert client.log[:3] == [
            "GET /api/health -> 200",
            f"POST /api/satellites/{satellite_id}/heartbeat -> 401",
            "POST /api/satellites/register -> 200",
        ]
        assert client.satellite_id == satellite_id
        assert client.api_key not in (old_key, rotated["apiKey"])
        status, beat = await client.heartbeat(session)
        assert status == 200
        assert beat["success"] is True
        status, _ = await client.poll(session)
        assert status == 200

    entry = await AuditEntry.get(action="satellite.reregistered", object_id=satellite_id)
    assert entry.details["rule"] == "rotated_key_unused"
    assert await RegistrationToken.filter(used_by_satellite_id=satellite_id).count() == 2
    state = rt.fleet.get(satellite_id)
    assert state is not None
    assert (state.status, state.online) == (SatelliteStatus.ACTIVE, True)


async def test_reference_client_that_lost_its_key_file_recovers_once_offline(
    server: RunningServer, rt: Runtime, clock: ManualClock
) -> None:
    """A client that lost its key file while its old process still heartbeats (or
    within the offline threshold of its last heartbeat) cannot take the name with an
    unbound token (409, saying why); once the satellite is offline it can."""
    base = server.url("").rstrip("/")
    first = ReferenceSatellite(base, "edge-satellite-06", await _global_token(rt))
    async with aiohttp.ClientSession() as session:
        await first.start(session)
        token = await _global_token(rt)
        again = ReferenceSatellite(base, "edge-satellite-06", token)  # no key: registers
        with pytest.raises(RuntimeError, match="409") as refused:
            await again.start(session)
        assert "groundstation token create --scope global --name edge-satellite-06" in str(
            refused.value)

        clock.advance(rt.settings.offline_threshold + 1)  # the old process stopped
        await again.start(session)
        assert again.satellite_id == first.satellite_id
        status, _ = await first.heartbeat(session)
        assert status == 401  # the old key stopped working at once
        status, _ = await again.heartbeat(session)
        assert status == 200
    entry = await AuditEntry.get(action="satellite.reregistered", object_id=again.satellite_id)
    assert entry.details["rule"] == "offline"
