"""One execution per live message and viewer scope (app/schema/fanout.py), seen from
real websocket subscribers: people who may see different things still do, and
subscribers who may see the same share one execution."""

from __future__ import annotations

from datetime import UTC, datetime

import aiohttp

from app.models.enums import GlobalRole, SatelliteStatus, SatelliteType, TeamRole
from app.runtime import Runtime
from app.schema.fanout import shared_executions
from app.services.common.actors import CLI_ACTOR
from app.services.satellites.admin import set_satellite_status
from tests.fixtures.graphql import ClientFactory
from tests.fixtures.live import heartbeat, subscribed
from tests.fixtures.mcp import InstallFactory
from tests.fixtures.people import TeamFactory
from tests.fixtures.satellites import SatelliteFactory, TestSatellite

STATUS = """subscription { satelliteStatusChanged { satellite { id status processCount } } }"""
METRICS = """subscription($id: ID!) { satelliteMetrics(satelliteId: $id) {
  satelliteId cpuUsagePercent } }"""


async def _process_on(http: aiohttp.ClientSession, satellite: TestSatellite, team_id: str,
                      installation_id: str) -> None:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    body = {"events": [{"type": "mcp.server.started", "timestamp": now, "data": {
        "server_id": installation_id, "server_slug": "files", "team_id": team_id,
        "process_id": 4242, "transport": "stdio", "tool_count": 3,
        "spawn_duration_ms": 120}}]}
    async with http.post(satellite.path("events"), json=body,
                         headers=satellite.headers) as response:
        assert response.status == 200, await response.text()


async def test_a_shared_status_change_answers_each_viewer_with_what_they_may_see(
    rt: Runtime, http: aiohttp.ClientSession, graphql_as: ClientFactory,
    make_team: TeamFactory, make_satellite: SatelliteFactory, install: InstallFactory,
) -> None:
    shared = await make_satellite(satellite_type=SatelliteType.GLOBAL)
    team_a, team_b = await make_team(), await make_team()
    for team in (team_a, team_b):
        await _process_on(http, shared, team.id, (await install(team.id)).id)
    member_a = await graphql_as(teams={team_a.id: TeamRole.TEAM_USER})
    member_b = await graphql_as(teams={team_b.id: TeamRole.TEAM_USER})
    admin = await graphql_as(global_role=GlobalRole.GLOBAL_ADMIN)

    before = shared_executions()
    async with subscribed(rt, http, member_a.session_token, STATUS) as a_first, \
            subscribed(rt, http, member_a.session_token, STATUS) as a_second, \
            subscribed(rt, http, member_b.session_token, STATUS) as b, \
            subscribed(rt, http, admin.session_token, STATUS) as everyone:
        await set_satellite_status(rt, shared.id, SatelliteStatus.MAINTENANCE, actor=CLI_ACTOR)
        seen = [(await subscription.next())["satelliteStatusChanged"]["satellite"]
                for subscription in (a_first, a_second, b, everyone)]

    assert {satellite["id"] for satellite in seen} == {shared.id}
    assert {satellite["status"] for satellite in seen} == {"MAINTENANCE"}
    # Each team counts its own process on the global satellite; the administrator both.
    assert [satellite["processCount"] for satellite in seen] == [1, 1, 1, 2]
    # Three viewer scopes, four subscribers: member A's two subscriptions shared one.
    assert shared_executions() - before == 3


async def test_one_heartbeat_is_executed_once_for_its_subscribers(
    rt: Runtime, http: aiohttp.ClientSession, graphql_as: ClientFactory,
    make_team: TeamFactory, make_satellite: SatelliteFactory,
) -> None:
    team = await make_team()
    satellite = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=team.id)
    member = await graphql_as(teams={team.id: TeamRole.TEAM_USER})
    variables = {"id": satellite.id}

    before = shared_executions()
    async with subscribed(rt, http, member.session_token, METRICS, variables) as first, \
            subscribed(rt, http, member.session_token, METRICS, variables) as second:
        await heartbeat(http, satellite, cpu=61.5)
        answers = [(await subscription.next())["satelliteMetrics"]
                   for subscription in (first, second)]

    assert answers == [{"satelliteId": satellite.id, "cpuUsagePercent": 61.5}] * 2
    assert shared_executions() - before == 1
