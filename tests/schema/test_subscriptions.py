"""Subscriptions over a real websocket (graphql-transport-ws), fed by real REST calls.

Isolation is proven by order, not by waiting: the other team's message is
caused first, the caller's own second, and the first message that arrives must
be the caller's own.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from app.bus import InProcessBus
from app.main import create_app
from app.models import Team
from app.models.enums import (
    CommandType,
    GlobalRole,
    SatelliteStatus,
    SatelliteType,
    TeamRole,
)
from app.rest.context import RUNTIME_KEY
from app.services.actors import CLI_ACTOR
from app.services.commands import enqueue_command
from app.services.runtime import Runtime, build_runtime
from app.services.satellites import set_satellite_status
from app.services.teams import add_team_member, remove_team_member
from app.services.users import create_user
from tests.fixtures.graphql import LOGIN, ClientFactory, GraphQLClient
from tests.fixtures.live import (
    Subscription,
    bus_subscribers,
    live_socket,
    subscribed,
    until_subscribed,
)
from tests.fixtures.people import PASSWORD, TeamFactory
from tests.fixtures.satellites import SatelliteFactory, TestSatellite
from tests.fixtures.server import eventually, make_settings

Json = dict[str, Any]
TS = "2026-01-02T03:04:05.000Z"

STATUS = """subscription($teamId: ID) { satelliteStatusChanged(teamId: $teamId) {
  satellite { id status online } online previousStatus at } }"""
EVENTS = """subscription($satelliteId: ID, $teamId: ID, $types: [String!]) {
  satelliteEvents(satelliteId: $satelliteId, teamId: $teamId, types: $types) {
    id type timestamp satelliteId teamId data } }"""
COMMANDS = """subscription($satelliteId: ID) { commandUpdated(satelliteId: $satelliteId) {
  id satelliteId status commandType result } }"""
METRICS = """subscription($satelliteId: ID!) { satelliteMetrics(satelliteId: $satelliteId) {
  satelliteId timestamp cpuUsagePercent memoryUsageMb processCount } }"""


def heartbeat_body(cpu: float = 12.5) -> Json:
    return {"status": "active", "system_metrics": {"cpu_usage_percent": cpu,
                                                   "memory_usage_mb": 256},
            "processes": [], "error_count": 0, "version": "1.2.3"}


async def heartbeat(http: aiohttp.ClientSession, satellite: TestSatellite,
                    cpu: float = 12.5) -> None:
    async with http.post(satellite.path("heartbeat"), data=json.dumps(heartbeat_body(cpu)),
                         headers=satellite.headers) as response:
        assert response.status == 200, await response.text()


def activity(team_id: str, requests: int = 7) -> Json:
    return {"type": "mcp.client.activity", "timestamp": TS,
            "data": {"team_id": team_id, "request_count": requests, "tool_call_count": 3,
                     "last_activity_at": TS}}


async def post_events(http: aiohttp.ClientSession, satellite: TestSatellite,
                      events: list[Json]) -> list[str]:
    async with http.post(satellite.path("events"), data=json.dumps({"events": events}),
                         headers=satellite.headers) as response:
        body = await response.json()
        assert response.status == 200, body
        assert body["failed"] == 0, body
        ids: list[str] = body["event_ids"]
        return ids


async def command_result(http: aiohttp.ClientSession, satellite: TestSatellite,
                         body: Json) -> None:
    async with http.post(satellite.path("command-result"), json=body,
                         headers=satellite.headers) as response:
        assert response.status == 200, await response.text()


async def poll(http: aiohttp.ClientSession, satellite: TestSatellite) -> list[Json]:
    async with http.get(satellite.path("commands"), headers=satellite.headers) as response:
        assert response.status == 200, await response.text()
        commands: list[Json] = (await response.json())["commands"]
        return commands


async def error_code(subscription: Subscription) -> str:
    """The code of the error that ends a subscription (a `next` with errors, then `complete`)."""
    result = await subscription.result()
    assert result.get("errors"), result
    assert (await subscription.final())["type"] == "complete"
    code: str = result["errors"][0]["extensions"]["code"]
    return code


@pytest.fixture
async def team_a(make_team: TeamFactory) -> Team:
    return await make_team()


@pytest.fixture
async def team_b(make_team: TeamFactory) -> Team:
    return await make_team()


@pytest.fixture
async def member_a(graphql_as: ClientFactory, team_a: Team) -> GraphQLClient:
    return await graphql_as(teams={team_a.id: TeamRole.TEAM_USER})


async def team_satellite(make_satellite: SatelliteFactory, team: Team,
                         active: bool = True) -> TestSatellite:
    return await make_satellite(satellite_type=SatelliteType.TEAM, team_id=team.id,
                                active=active)


# ---- satelliteStatusChanged -------------------------------------------------------

async def test_first_heartbeat_sends_exactly_one_activation_message(
    rt: Runtime, http: aiohttp.ClientSession, member_a: GraphQLClient, team_a: Team,
    make_satellite: SatelliteFactory,
) -> None:
    satellite = await team_satellite(make_satellite, team_a, active=False)
    assert member_a.token is not None
    async with subscribed(rt, http, member_a.token, STATUS) as subscription:
        await heartbeat(http, satellite)
        await heartbeat(http, satellite)  # already online and active: no message
        await set_satellite_status(rt, satellite.id, SatelliteStatus.MAINTENANCE,
                                   actor=CLI_ACTOR)
        first = (await subscription.next())["satelliteStatusChanged"]
        second = (await subscription.next())["satelliteStatusChanged"]
    assert first["satellite"] == {"id": satellite.id, "status": "ACTIVE", "online": True}
    assert (first["online"], first["previousStatus"]) == (True, "INACTIVE")
    assert first["at"]
    # The next message is the maintenance change: activation sent one message only.
    assert second["satellite"]["status"] == "MAINTENANCE"
    assert second["previousStatus"] == "ACTIVE"


async def test_concurrent_first_heartbeats_send_one_activation_message(
    rt: Runtime, http: aiohttp.ClientSession, member_a: GraphQLClient, team_a: Team,
    make_satellite: SatelliteFactory,
) -> None:
    satellite = await team_satellite(make_satellite, team_a, active=False)
    assert member_a.token is not None
    async with subscribed(rt, http, member_a.token, STATUS) as subscription:
        await asyncio.gather(*(heartbeat(http, satellite) for _ in range(4)))
        await set_satellite_status(rt, satellite.id, SatelliteStatus.MAINTENANCE,
                                   actor=CLI_ACTOR)
        first = (await subscription.next())["satelliteStatusChanged"]
        second = (await subscription.next())["satelliteStatusChanged"]
    assert (first["satellite"]["status"], first["previousStatus"]) == ("ACTIVE", "INACTIVE")
    assert (second["satellite"]["status"], second["previousStatus"]) == (
        "MAINTENANCE", "ACTIVE")


async def test_status_changes_of_another_team_are_invisible(
    rt: Runtime, http: aiohttp.ClientSession, member_a: GraphQLClient, team_a: Team,
    team_b: Team, make_satellite: SatelliteFactory,
) -> None:
    theirs = await team_satellite(make_satellite, team_b, active=False)
    ours = await team_satellite(make_satellite, team_a, active=False)
    assert member_a.token is not None
    async with subscribed(rt, http, member_a.token, STATUS) as subscription:
        await heartbeat(http, theirs)
        await heartbeat(http, ours)
        message = (await subscription.next())["satelliteStatusChanged"]
    assert message["satellite"]["id"] == ours.id


async def test_team_filter_and_global_satellites(
    rt: Runtime, http: aiohttp.ClientSession, member_a: GraphQLClient, team_a: Team,
    make_satellite: SatelliteFactory,
) -> None:
    shared = await make_satellite(satellite_type=SatelliteType.GLOBAL, active=False)
    ours = await team_satellite(make_satellite, team_a, active=False)
    assert member_a.token is not None
    async with subscribed(rt, http, member_a.token, STATUS) as everything, \
            subscribed(rt, http, member_a.token, STATUS, {"teamId": team_a.id}) as only_team:
        await heartbeat(http, shared)
        await heartbeat(http, ours)
        seen = [(await everything.next())["satelliteStatusChanged"]["satellite"]["id"]
                for _ in range(2)]
        filtered = (await only_team.next())["satelliteStatusChanged"]["satellite"]["id"]
    assert sorted(seen) == sorted([shared.id, ours.id])  # global status: everyone sees it
    assert filtered == ours.id


# ---- satelliteMetrics -----------------------------------------------------------

async def test_heartbeat_reaches_metrics_subscribers(
    rt: Runtime, http: aiohttp.ClientSession, member_a: GraphQLClient, team_a: Team,
    make_satellite: SatelliteFactory,
) -> None:
    other = await team_satellite(make_satellite, team_a)
    satellite = await team_satellite(make_satellite, team_a)
    assert member_a.token is not None
    async with subscribed(rt, http, member_a.token, METRICS,
                          {"satelliteId": satellite.id}) as subscription:
        await heartbeat(http, other, cpu=99.0)  # another satellite: not this stream
        await heartbeat(http, satellite, cpu=42.5)
        metrics = (await subscription.next())["satelliteMetrics"]
    assert metrics["satelliteId"] == satellite.id
    assert (metrics["cpuUsagePercent"], metrics["memoryUsageMb"], metrics["processCount"]) == (
        42.5, 256.0, 0)
    assert metrics["timestamp"]


async def test_metrics_of_global_satellites_are_for_admins_only(
    rt: Runtime, http: aiohttp.ClientSession, graphql_as: ClientFactory, member_a: GraphQLClient,
    team_b: Team, make_satellite: SatelliteFactory,
) -> None:
    shared = await make_satellite(satellite_type=SatelliteType.GLOBAL)
    theirs = await team_satellite(make_satellite, team_b)
    assert member_a.token is not None
    async with live_socket(http, token=member_a.token) as socket:
        forbidden = await socket.subscribe(METRICS, {"satelliteId": shared.id})
        assert await error_code(Subscription(socket, forbidden)) == "FORBIDDEN"
        hidden = await socket.subscribe(METRICS, {"satelliteId": theirs.id})
        assert await error_code(Subscription(socket, hidden)) == "NOT_FOUND"

    admin = await graphql_as(global_role=GlobalRole.GLOBAL_ADMIN)
    assert admin.token is not None
    async with subscribed(rt, http, admin.token, METRICS,
                          {"satelliteId": shared.id}) as subscription:
        await heartbeat(http, shared, cpu=7.0)
        assert (await subscription.next())["satelliteMetrics"]["cpuUsagePercent"] == 7.0


# ---- satelliteEvents --------------------------------------------------------------

async def test_event_batch_reaches_event_subscribers_of_its_team_only(
    rt: Runtime, http: aiohttp.ClientSession, member_a: GraphQLClient, team_a: Team,
    team_b: Team, make_satellite: SatelliteFactory,
) -> None:
    ours = await team_satellite(make_satellite, team_a)
    theirs = await team_satellite(make_satellite, team_b)
    assert member_a.token is not None
    async with subscribed(rt, http, member_a.token, EVENTS) as subscription:
        await post_events(http, theirs, [activity(team_b.id)])
        [event_id] = await post_events(http, ours, [activity(team_a.id, requests=11)])
        event = (await subscription.next())["satelliteEvents"]
    assert event["id"] == event_id
    assert (event["type"], event["satelliteId"], event["teamId"]) == (
        "mcp.client.activity", ours.id, team_a.id)
    assert event["data"]["request_count"] == 11
    assert event["timestamp"].startswith("2026-01-02T03:04:05")


async def test_events_of_a_global_satellite_are_shown_to_their_team_only(
    rt: Runtime, http: aiohttp.ClientSession, member_a: GraphQLClient, team_a: Team,
    team_b: Team, make_satellite: SatelliteFactory,
) -> None:
    shared = await make_satellite(satellite_type=SatelliteType.GLOBAL)
    assert member_a.token is not None
    async with subscribed(rt, http, member_a.token, EVENTS,
                          {"satelliteId": shared.id}) as subscription:
        await post_events(http, shared, [activity(team_b.id)])
        [ours] = await post_events(http, shared, [activity(team_a.id)])
        event = (await subscription.next())["satelliteEvents"]
    assert (event["id"], event["teamId"]) == (ours, team_a.id)


async def test_event_filters_by_satellite_and_type(
    rt: Runtime, http: aiohttp.ClientSession, member_a: GraphQLClient, team_a: Team,
    make_satellite: SatelliteFactory,
) -> None:
    one = await team_satellite(make_satellite, team_a)
    two = await team_satellite(make_satellite, team_a)
    assert member_a.token is not None
    logs = {"type": "mcp.server.logs", "timestamp": TS,
            "data": {"installation_id": None, "team_id": team_a.id,
                     "logs": [{"level": "info", "message": "ready", "timestamp": TS}]}}
    async with subscribed(rt, http, member_a.token, EVENTS,
                          {"satelliteId": two.id, "types": ["mcp.client.activity"]}) as sub:
        await post_events(http, one, [activity(team_a.id)])
        await post_events(http, two, [logs])  # wrong type (stored or not, never sent)
        [wanted] = await post_events(http, two, [activity(team_a.id, requests=3)])
        event = (await sub.next())["satelliteEvents"]
    assert event["id"] == wanted


async def test_events_of_a_satellite_outside_the_scope_are_not_found(
    http: aiohttp.ClientSession, member_a: GraphQLClient, team_b: Team,
    make_satellite: SatelliteFactory,
) -> None:
    theirs = await team_satellite(make_satellite, team_b)
    assert member_a.token is not None
    async with live_socket(http, token=member_a.token) as socket:
        for query in (EVENTS, COMMANDS):
            operation = await socket.subscribe(query, {"satelliteId": theirs.id})
            assert await error_code(Subscription(socket, operation)) == "NOT_FOUND"


# ---- commandUpdated ---------------------------------------------------------------

async def test_command_result_reaches_command_subscribers_of_its_team_only(
    rt: Runtime, http: aiohttp.ClientSession, member_a: GraphQLClient, team_a: Team,
    team_b: Team, make_satellite: SatelliteFactory,
) -> None:
    ours = await team_satellite(make_satellite, team_a)
    theirs = await team_satellite(make_satellite, team_b)
    assert member_a.token is not None
    async with subscribed(rt, http, member_a.token, COMMANDS) as subscription:
        other = await enqueue_command(rt, satellite_id=theirs.id,
                                      command_type=CommandType.HEALTH_CHECK, actor=CLI_ACTOR)
        await poll(http, theirs)
        await command_result(http, theirs, {"command_id": other.id, "status": "completed"})
        command = await enqueue_command(rt, satellite_id=ours.id,
                                        command_type=CommandType.HEALTH_CHECK, actor=CLI_ACTOR)
        await poll(http, ours)
        await command_result(http, ours, {"command_id": command.id, "status": "completed",
                                          "result": {"healthy": True}})
        seen: list[Json] = []
        while not seen or seen[-1]["status"] != "COMPLETED":
            seen.append((await subscription.next())["commandUpdated"])
    assert {update["id"] for update in seen} == {command.id}
    assert [update["status"] for update in seen] == ["PENDING", "ACKNOWLEDGED", "COMPLETED"]
    assert seen[-1]["result"] == {"healthy": True}
    assert seen[-1]["satelliteId"] == ours.id


# ---- authentication, sessions, memberships -----------------------------------------

@pytest.mark.parametrize("init", [{}, {"authToken": "not-a-session"}, {"authToken": 42}])
async def test_refused_connection_init_closes_4403(
    http: aiohttp.ClientSession, init: Json
) -> None:
    async with live_socket(http, init=init, acknowledged=False) as socket:
        assert await socket.closed_with() == 4403


async def test_bearer_header_and_cookie_authenticate_the_socket(
    rt: Runtime, http: aiohttp.ClientSession, member_a: GraphQLClient, team_a: Team,
    make_satellite: SatelliteFactory,
) -> None:
    satellite = await team_satellite(make_satellite, team_a)
    assert member_a.token is not None
    for headers in ({"Authorization": f"Bearer {member_a.token}"},
                    {"Cookie": f"gs_session={member_a.token}"}):
        async with live_socket(http, headers=headers) as socket:
            before = bus_subscribers(rt)
            await socket.subscribe(METRICS, {"satelliteId": satellite.id})
            await until_subscribed(rt, before)
            await heartbeat(http, satellite)
            message = await socket.receive()
            assert message["payload"]["data"]["satelliteMetrics"]["satelliteId"] == satellite.id


async def test_logout_closes_the_sessions_subscriptions(
    rt: Runtime, http: aiohttp.ClientSession, member_a: GraphQLClient, team_a: Team,
    make_satellite: SatelliteFactory,
) -> None:
    assert member_a.token is not None
    async with subscribed(rt, http, member_a.token, EVENTS) as subscription:
        assert await member_a.data("mutation { logout }") == {"logout": True}
        assert await subscription.socket.closed_with() == 4403
    async with live_socket(http, token=member_a.token, acknowledged=False) as socket:
        assert await socket.closed_with() == 4403  # the token is gone for good


async def test_password_change_closes_the_other_sessions_subscriptions(
    rt: Runtime, http: aiohttp.ClientSession, member_a: GraphQLClient,
) -> None:
    assert member_a.token is not None
    assert member_a.user is not None

    other = await GraphQLClient(http).data(LOGIN, {"email": member_a.user.email,
                                                   "password": PASSWORD})
    async with subscribed(rt, http, member_a.token, EVENTS) as subscription:
        session = GraphQLClient(http, other["login"]["token"])
        assert await session.data(
            "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c,"
            " newPassword: $n) }", {"c": PASSWORD, "n": "another long password 123"},
        ) == {"changePassword": True}
        assert await subscription.socket.closed_with() == 4403


async def test_removed_member_stops_seeing_the_teams_messages(
    rt: Runtime, http: aiohttp.ClientSession, graphql_as: ClientFactory, team_a: Team,
    team_b: Team, make_satellite: SatelliteFactory,
) -> None:
    person = await graphql_as(teams={team_a.id: TeamRole.TEAM_USER,
                                     team_b.id: TeamRole.TEAM_USER})
    assert person.token is not None
    assert person.user is not None
    sat_a = await team_satellite(make_satellite, team_a)
    sat_b = await team_satellite(make_satellite, team_b)
    user_id = person.user.id
    async with subscribed(rt, http, person.token, EVENTS) as subscription:
        [seen_a] = await post_events(http, sat_a, [activity(team_a.id)])
        assert (await subscription.next())["satelliteEvents"]["id"] == seen_a
        await remove_team_member(rt, team_a.id, user_id, actor=CLI_ACTOR)

        async def reloaded() -> bool:
            return all(team_a.id not in (c.principal.team_ids if c.principal else ())
                       for c in rt.live.of_user(user_id))

        await eventually(reloaded)
        await post_events(http, sat_a, [activity(team_a.id)])
        [seen_b] = await post_events(http, sat_b, [activity(team_b.id)])
        assert (await subscription.next())["satelliteEvents"]["id"] == seen_b
        # Added again: the team's messages come back without resubscribing.
        await add_team_member(rt, team_a.id, user_id, TeamRole.TEAM_USER, actor=CLI_ACTOR)

        async def readded() -> bool:
            return all(team_a.id in (c.principal.team_ids if c.principal else ())
                       for c in rt.live.of_user(user_id))

        await eventually(readded)
        [again] = await post_events(http, sat_a, [activity(team_a.id)])
        assert (await subscription.next())["satelliteEvents"]["id"] == again


# ---- a subscriber that falls behind, shutdown ----------------------------------------

@pytest.fixture
async def small_queue_server(tmp_path: Path) -> AsyncIterator[tuple[Runtime, TestServer]]:
    settings = make_settings(tmp_path)
    runtime = build_runtime(settings, bus=InProcessBus(queue_size=4))
    app = create_app(settings, runtime)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield app[RUNTIME_KEY], server
    finally:
        await server.close()


async def test_a_subscriber_that_falls_behind_gets_a_final_error(
    small_queue_server: tuple[Runtime, TestServer],
) -> None:
    rt, server = small_queue_server

    user = await create_user(rt, email="slow@example.com", password=PASSWORD,
                             global_role=GlobalRole.GLOBAL_ADMIN, actor=CLI_ACTOR)
    async with aiohttp.ClientSession(base_url=str(server.make_url("/"))) as http:
        login = await GraphQLClient(http).data(LOGIN, {"email": user.email,
                                                      "password": PASSWORD})
        async with subscribed(rt, http, login["login"]["token"], EVENTS) as subscription:
            bus = rt.bus
            assert isinstance(bus, InProcessBus)
            for number in range(10):  # no await in between: the queue overflows
                bus.publish_nowait("satellite.events", {
                    "id": str(number), "satellite_id": "s", "team_id": None,
                    "type": "t", "timestamp": TS, "data": {}})
            final = await subscription.final()
            while final["type"] == "next" and "errors" not in final["payload"]:
                final = await subscription.final()
            assert final["type"] == "next"
            error = final["payload"]["errors"][0]
            assert error["extensions"]["code"] == "UNAVAILABLE"
            assert error["extensions"]["reason"] == "subscriber_dropped"
            assert (await subscription.final())["type"] == "complete"


async def test_an_event_whose_type_looks_like_the_drop_marker_is_just_an_event(
    rt: Runtime, http: aiohttp.ClientSession, member_a: GraphQLClient, team_a: Team,
    make_satellite: SatelliteFactory,
) -> None:
    ours = await team_satellite(make_satellite, team_a)
    assert member_a.token is not None
    async with subscribed(rt, http, member_a.token, EVENTS) as subscription:
        await rt.bus.publish("satellite.events", {
            "id": "1", "satellite_id": ours.id, "team_id": team_a.id,
            "type": "subscriber_dropped", "timestamp": TS, "data": {}})
        [event_id] = await post_events(http, ours, [activity(team_a.id)])
        assert (await subscription.next())["satelliteEvents"]["type"] == "subscriber_dropped"
        assert (await subscription.next())["satelliteEvents"]["id"] == event_id


async def test_shutdown_closes_open_subscriptions(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    app = create_app(settings)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    rt = app[RUNTIME_KEY]
    try:
        user = await create_user(rt, email="late@example.com", password=PASSWORD,
                                 global_role=GlobalRole.GLOBAL_ADMIN, actor=CLI_ACTOR)
        async with aiohttp.ClientSession(base_url=str(server.make_url("/"))) as http:
            login = await GraphQLClient(http).data(LOGIN, {"email": user.email,
                                                          "password": PASSWORD})
            async with subscribed(rt, http, login["login"]["token"], STATUS) as subscription:
                closing = asyncio.create_task(server.close())
                assert await subscription.socket.closed_with() == 1001
                await closing
    finally:
        await server.close()
