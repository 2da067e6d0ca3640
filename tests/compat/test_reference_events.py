"""Every event the reference satellite sends is accepted and applied (docs/protocol.md §10, §13).

A reference client registers, heartbeats and fetches its configuration over
HTTP, then sends the events of its registry exactly as it builds them: each
alone, and all of them in one batch; the effects are read back from the database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest

from app.bus import Channels
from app.models import (
    AuditEntry,
    McpClientActivity,
    McpClientSession,
    McpInstallation,
    McpServer,
    McpTool,
    ResourceLimitBreach,
    SatelliteConfigState,
    SatelliteEvent,
    SatelliteProcess,
    SatelliteUsageLog,
)
from app.models.enums import (
    ActorType,
    HealthStatus,
    ProcessStatus,
    TeamRole,
    TokenScope,
    TransportType,
)
from app.runtime import Runtime
from app.services.common.actors import CLI_ACTOR
from app.services.people.teams import add_team_member
from app.services.satellites.tokens import issue_registration_token
from app.services.telemetry.effects import CLIENT_AUTH_FAILED
from tests.compat.reference_client import ReferenceSatellite
from tests.compat.reference_events import (
    CLIENT_IP,
    CONFIG_HASH,
    OAUTH_CLIENT_ID,
    PID_RESPAWNED,
    PID_RESTARTED,
    PID_STARTED,
    REGISTRY_TYPES,
    SESSION_ID,
    START,
    TOOL_ADDED,
    TOOLS,
    USER_AGENT,
    Fleet,
    iso,
    registry_batch,
    registry_event,
)
from tests.fixtures.people import TeamFactory, UserFactory
from tests.fixtures.server import RunningServer, eventually, listening

Json = dict[str, Any]


@dataclass
class Connected:
    """A registered, active reference satellite and what its events name."""

    client: ReferenceSatellite
    session: aiohttp.ClientSession
    fleet: Fleet

    @property
    def satellite_id(self) -> str:
        assert self.client.satellite_id is not None
        return self.client.satellite_id

    async def send(self, events: list[Json]) -> Json:
        status, body = await self.client.send_events(self.session, events)
        assert status == 200, body
        assert isinstance(body, dict)
        return body


@pytest.fixture
async def satellite(server: RunningServer, rt: Runtime, make_team: TeamFactory,
                    make_user: UserFactory) -> AsyncIterator[Connected]:
    team = await make_team()
    user = await make_user()
    await add_team_member(rt, team.id, user.id, TeamRole.TEAM_USER, actor=CLI_ACTOR)
    catalogue = await McpServer.create(slug=f"context7-{team.slug}", name="Context7",
                                       transport_type=TransportType.STDIO, command="npx")
    installation = await McpInstallation.create(team=team, server=catalogue,
                                                name=f"context7-{team.slug}")
    token = await issue_registration_token(rt, scope=TokenScope.GLOBAL, team_id=None,
                                           hours=None, satellite_name=None, actor=CLI_ACTOR)
    client = ReferenceSatellite(server.url("").rstrip("/"), f"edge-{team.slug}", token.token)
    async with aiohttp.ClientSession() as session:
        await client.start(session)
        satellite_id = client.satellite_id
        # The heartbeat is flushed in the background: done once its process is stored.
        await eventually(lambda: SatelliteProcess.exists(satellite_id=satellite_id))
        yield Connected(client, session,
                        Fleet(team.id, installation.id, installation.name, user.id))


# ---- reading the effects back -----------------------------------------------------

async def snapshot(connected: Connected) -> Json:
    """Everything the events of one satellite may change, as plain values."""
    satellite_id, fleet = connected.satellite_id, connected.fleet
    return {
        "events": await SatelliteEvent.filter(satellite_id=satellite_id).order_by("id").values(),
        "processes": await SatelliteProcess.filter(satellite_id=satellite_id).order_by(
            "process_id").values(),
        "sessions": await McpClientSession.filter(satellite_id=satellite_id).values(),
        "activity": await McpClientActivity.filter(satellite_id=satellite_id).values(),
        "usage": await SatelliteUsageLog.filter(satellite_id=satellite_id).values(),
        "installation": await McpInstallation.filter(id=fleet.installation_id).values(
            "status", "status_message"),
        "tools": await McpTool.filter(installation_id=fleet.installation_id).order_by(
            "tool_name").values(),
        "config": await SatelliteConfigState.filter(satellite_id=satellite_id).values(),
        "audit": await AuditEntry.filter(actor_satellite_id=satellite_id).order_by("id").values(),
        "breaches": await ResourceLimitBreach.filter(satellite_id=satellite_id).values(),
    }


def at(step: int) -> datetime:
    return START + timedelta(seconds=step)


async def process(connected: Connected) -> SatelliteProcess:
    """The process row the server events made (named by the installation id)."""
    return await SatelliteProcess.get(satellite_id=connected.satellite_id,
                                      process_id=connected.fleet.installation_id)


async def client_session(connected: Connected) -> McpClientSession:
    return await McpClientSession.get(satellite_id=connected.satellite_id, session_id=SESSION_ID)


async def tool_names(connected: Connected) -> list[str]:
    return sorted(str(name) for name in await McpTool.filter(
        installation_id=connected.fleet.installation_id).values_list("tool_name", flat=True))


async def config_state(connected: Connected) -> SatelliteConfigState:
    return await SatelliteConfigState.get(satellite_id=connected.satellite_id)


# One check per type: the effect of its event, sent as step `step` of the registry order.
async def _connected(connected: Connected, step: int) -> None:
    row = await client_session(connected)
    assert row.team_id == connected.fleet.team_id  # type: ignore[attr-defined]
    assert (row.client_type, row.transport, row.user_agent, row.ip_address) == (
        "vscode", "http", USER_AGENT, CLIENT_IP)
    assert (row.connected_at, row.disconnected_at) == (at(step), None)


async def _disconnected(connected: Connected, step: int) -> None:
    row = await client_session(connected)
    assert row.connected_at == at(0)
    assert row.disconnected_at == at(step)
    assert (row.duration_seconds, row.tool_execution_count, row.disconnect_reason) == (
        1842, 17, "client_close")


async def _activity(connected: Connected, step: int) -> None:
    [counters] = await McpClientActivity.filter(satellite_id=connected.satellite_id)
    assert (counters.request_count, counters.tool_call_count) == (41, 17)
    assert counters.team_id == connected.fleet.team_id  # type: ignore[attr-defined]
    row = await client_session(connected)
    assert row.last_activity_at == at(step)
    assert row.client_name == "VS Code"
    assert row.user_id == connected.fleet.user_id  # type: ignore[attr-defined]
    stored = await SatelliteEvent.filter(satellite_id=connected.satellite_id,
                                         event_type="mcp.client.activity").first()
    assert stored is not None
    assert stored.data["user_id"] == connected.fleet.user_id  # a member: kept


async def _executed(connected: Connected, step: int) -> None:
    [usage] = await SatelliteUsageLog.filter(satellite_id=connected.satellite_id)
    assert (usage.tool_name, usage.duration_ms, usage.success) == (TOOLS[0], 234, True)
    assert usage.installation_id == connected.fleet.installation_id


def _process_check(status: ProcessStatus, health: HealthStatus, pid: int | None,
                   error: str | None = None, started_step: int | None = None
                   ) -> Callable[[Connected, int], Awaitable[None]]:
    async def check(connected: Connected, step: int) -> None:
        row = await process(connected)
        assert (row.status, row.health_status, row.os_pid) == (status, health, pid)
        assert row.installation_id == connected.fleet.installation_id
        assert row.team_id == connected.fleet.team_id  # type: ignore[attr-defined]
        assert row.server_name == connected.fleet.server_slug
        assert row.last_reported_at == at(step)
        if error is None:
            assert row.error_message is None
        else:
            assert row.error_message is not None
            assert error in row.error_message
        if started_step is not None:
            assert row.started_at == at(started_step)
    return check


async def _permanently_failed(connected: Connected, step: int) -> None:
    await _process_check(ProcessStatus.FAILED, HealthStatus.UNHEALTHY, None,
                         "permanently failed after 3 crashes")(connected, step)
    installation = await McpInstallation.get(id=connected.fleet.installation_id)
    assert installation.status == "permanently_failed"
    assert installation.status_message is not None
    assert "Cannot find module" in installation.status_message


async def _discovered(connected: Connected, step: int) -> None:
    assert await tool_names(connected) == sorted(TOOLS)


async def _updated(connected: Connected, step: int) -> None:
    assert await tool_names(connected) == sorted([TOOLS[0], TOOL_ADDED])


async def _refreshed(connected: Connected, step: int) -> None:
    row = await config_state(connected)
    assert row.refreshed_at == at(step)
    assert (row.config_hash, row.server_count, row.teams_count, row.change_detected,
            row.fetch_duration_ms) == (CONFIG_HASH, 3, 2, True, 87)
    assert [row.error_at, row.error_type, row.error_message] == [None, None, None]


async def _config_error(connected: Connected, step: int) -> None:
    row = await config_state(connected)
    assert (row.error_at, row.error_type, row.error_status_code) == (at(step), "network", None)
    assert row.error_message == "connect ECONNREFUSED 10.0.4.7:3000"
    assert row.config_hash == CONFIG_HASH  # the last refresh stays


async def _auth_failed(connected: Connected, step: int) -> None:
    [entry] = await AuditEntry.filter(actor_satellite_id=connected.satellite_id,
                                      action=CLIENT_AUTH_FAILED)
    assert entry.actor_type is ActorType.SATELLITE
    assert entry.team_id == connected.fleet.team_id
    assert entry.address == CLIENT_IP
    assert entry.details["reason"] == "invalid_token"
    assert entry.details["client_id"] == OAUTH_CLIENT_ID
    assert entry.details["ip_address"] == CLIENT_IP


async def _limit_exceeded(connected: Connected, step: int) -> None:
    [breach] = await ResourceLimitBreach.filter(satellite_id=connected.satellite_id)
    assert (breach.resource_type, breach.current_value, breach.limit_value) == (
        "memory", 612.5, 512)
    assert breach.team_id == connected.fleet.team_id  # type: ignore[attr-defined]
    assert breach.occurred_at == at(step)


CHECKS: dict[str, Callable[[Connected, int], Awaitable[None]]] = {
    "mcp.client.connected": _connected,
    "mcp.client.disconnected": _disconnected,
    "mcp.client.activity": _activity,
    "mcp.tool.executed": _executed,
    "mcp.server.started": _process_check(ProcessStatus.RUNNING, HealthStatus.HEALTHY,
                                         PID_STARTED, started_step=4),
    "mcp.server.crashed": _process_check(ProcessStatus.FAILED, HealthStatus.UNHEALTHY, None,
                                         "exited with code 1"),
    "mcp.server.restarted": _process_check(ProcessStatus.RUNNING, HealthStatus.HEALTHY,
                                           PID_RESTARTED, started_step=6),
    "mcp.server.stopped": _process_check(ProcessStatus.STOPPED, HealthStatus.UNKNOWN, None),
    "mcp.server.permanently_failed": _permanently_failed,
    "mcp.server.dormant": _process_check(ProcessStatus.STOPPED, HealthStatus.UNKNOWN, None,
                                         "permanently failed"),
    "mcp.server.respawned": _process_check(ProcessStatus.RUNNING, HealthStatus.HEALTHY,
                                           PID_RESPAWNED, started_step=10),
    "mcp.tools.discovered": _discovered,
    "mcp.tools.updated": _updated,
    "config.refreshed": _refreshed,
    "config.error": _config_error,
    "security.auth.failed": _auth_failed,
    "resource.limit.exceeded": _limit_exceeded,
}


# ---- the tests ------------------------------------------------------------------------

def test_the_registry_has_seventeen_types_each_checked() -> None:
    assert len(REGISTRY_TYPES) == len(set(REGISTRY_TYPES)) == 17
    assert set(CHECKS) == set(REGISTRY_TYPES)


async def test_each_registry_event_alone_is_processed_and_applied(
    satellite: Connected,
) -> None:
    for step, event_type in enumerate(REGISTRY_TYPES):
        body = await satellite.send([registry_event(event_type, satellite.fleet, step)])
        assert (body["success"], body["processed"], body["failed"]) == (True, 1, 0), body
        assert "failures" not in body
        await CHECKS[event_type](satellite, step)
    stored = await SatelliteEvent.filter(satellite_id=satellite.satellite_id).order_by("id")
    assert [row.event_type for row in stored] == list(REGISTRY_TYPES)
    teams = {row.event_type: row.team_id for row in stored}  # type: ignore[attr-defined]
    # a global satellite's own configuration events belong to no team
    assert teams.pop("config.refreshed") is teams.pop("config.error") is None
    assert set(teams.values()) == {satellite.fleet.team_id}


async def test_all_registry_events_in_one_batch_are_applied_in_order(
    satellite: Connected,
) -> None:
    body = await satellite.send(registry_batch(satellite.fleet))
    assert (body["processed"], body["failed"]) == (17, 0), body
    assert len(set(body["event_ids"])) == 17
    last = len(REGISTRY_TYPES) - 1
    # The last event about each thing decides what it looks like.
    await _process_check(ProcessStatus.RUNNING, HealthStatus.HEALTHY, PID_RESPAWNED,
                         started_step=10)(satellite, 10)
    session = await client_session(satellite)
    assert (session.connected_at, session.disconnected_at) == (at(0), at(1))
    assert session.last_activity_at == at(2)
    assert session.user_agent == USER_AGENT
    await _activity(satellite, 2)
    await _executed(satellite, 3)
    installation = await McpInstallation.get(id=satellite.fleet.installation_id)
    assert installation.status == "permanently_failed"
    await _updated(satellite, 12)
    await _config_error(satellite, 14)
    config = await config_state(satellite)
    assert (config.refreshed_at, config.server_count) == (at(13), 3)
    await _auth_failed(satellite, 15)
    await _limit_exceeded(satellite, last)


async def test_the_same_batch_replayed_with_its_client_ids_changes_nothing(
    satellite: Connected,
) -> None:
    batch = [{**event, "id": f"evt-{index:03d}"}
             for index, event in enumerate(registry_batch(satellite.fleet))]
    first = await satellite.send(batch)
    assert (first["processed"], first["failed"]) == (17, 0), first
    before = await snapshot(satellite)

    again = await satellite.send(batch)

    assert (again["processed"], again["failed"]) == (17, 0), again
    assert again["event_ids"] == first["event_ids"]
    assert await snapshot(satellite) == before


@pytest.mark.parametrize("order", [
    ("started", "crashed", "restarted", "dormant", "respawned"),
    ("crashed", "respawned", "started", "started", "dormant", "restarted", "crashed",
     "crashed", "respawned"),
    ("dormant", "respawned", "crashed"),
])
async def test_lifecycle_events_of_a_never_seen_server_in_one_batch_leave_one_row(
    satellite: Connected, order: tuple[str, ...],
) -> None:
    fleet = Fleet(satellite.fleet.team_id, "stdio-files-7f3a", "files-7f3a",
                  satellite.fleet.user_id)
    events = [registry_event(f"mcp.server.{name}", fleet, step)
              for step, name in enumerate(order)]

    body = await satellite.send(events)

    assert (body["processed"], body["failed"]) == (len(order), 0), body
    [row] = await SatelliteProcess.filter(satellite_id=satellite.satellite_id,
                                          process_id="stdio-files-7f3a")
    expected = {"started": (ProcessStatus.RUNNING, PID_STARTED),
                "crashed": (ProcessStatus.FAILED, None),
                "restarted": (ProcessStatus.RUNNING, PID_RESTARTED),
                "dormant": (ProcessStatus.STOPPED, None),
                "respawned": (ProcessStatus.RUNNING, PID_RESPAWNED)}[order[-1]]
    assert (row.status, row.os_pid) == expected
    assert row.last_reported_at == at(len(order) - 1)
    assert row.installation_id is None
    assert row.team_id == fleet.team_id  # type: ignore[attr-defined]


async def test_an_unknown_well_formed_type_is_stored_published_counted_and_logged_once(
    satellite: Connected, rt: Runtime, caplog: pytest.LogCaptureFixture,
) -> None:
    paused = {"type": "mcp.server.paused", "timestamp": iso(START),
              "data": {"server_id": satellite.fleet.installation_id,
                       "team_id": satellite.fleet.team_id, "pause_reason": "maintenance"}}
    before = await snapshot(satellite)
    with caplog.at_level(logging.WARNING, logger="app.services.telemetry.ingest"):
        async with listening(rt, Channels.SATELLITE_EVENTS) as received:
            body = await satellite.send([paused, paused])
            messages = [await asyncio.wait_for(received.get(), 15) for _ in range(2)]
        again = await satellite.send([paused])

    assert (body["processed"], body["failed"], again["processed"]) == (2, 0, 1), body
    stored = await SatelliteEvent.filter(satellite_id=satellite.satellite_id,
                                         event_type="mcp.server.paused").order_by("id")
    assert [str(row.id) for row in stored] == body["event_ids"] + again["event_ids"]
    assert stored[0].data["pause_reason"] == "maintenance"
    assert stored[0].installation_id == satellite.fleet.installation_id
    assert [message["id"] for message in messages] == body["event_ids"]
    assert {(message["type"], message["team_id"]) for message in messages} == {
        ("mcp.server.paused", satellite.fleet.team_id)}
    after = await snapshot(satellite)
    assert {key: value for key, value in after.items() if key != "events"} == {
        key: value for key, value in before.items() if key != "events"}  # no other effect
    assert rt.metrics.registry.get_sample_value(
        "groundstation_unknown_events_total", {"type": "mcp.server.paused"}) == 3
    logged = [record for record in caplog.records if record.message == "unknown event type"]
    assert len(logged) == 1


@pytest.mark.parametrize("event_type", ["Mcp.Server.Paused", "paused", "mcp..paused",
                                        "mcp.server.", "mcp server paused", "mcp.server-paused"])
async def test_a_type_not_of_the_dotted_form_fails(satellite: Connected,
                                                   event_type: str) -> None:
    body = await satellite.send([{"type": event_type, "timestamp": iso(START), "data": {}},
                                 registry_event("mcp.tool.executed", satellite.fleet)])
    assert (body["processed"], body["failed"]) == (1, 1)
    assert body["failures"][0]["index"] == 0
    assert "dotted lower-case" in body["failures"][0]["error"]
