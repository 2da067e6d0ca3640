"""Subscriptions over a real websocket (graphql-transport-ws), fed by real REST calls.

Isolation is proven by order, not by waiting: the other team's message is
caused first, the caller's own second, and the first message that arrives must
be the caller's own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from app.bus import InProcessBus
from app.models import Session, Team
from app.models.enums import (
    CommandType,
    GlobalRole,
    SatelliteStatus,
    SatelliteType,
    TeamRole,
)
from app.runtime import Runtime
from app.services.commands.queue import enqueue_command
from app.services.common.actors import CLI_ACTOR
from app.services.common.clock import utcnow
from app.services.people.sessions import session_digest
from app.services.people.teams import add_team_member, remove_team_member
from app.services.satellites.admin import set_satellite_status
from tests.fixtures.graphql import ClientFactory, GraphQLClient, log_in
from tests.fixtures.live import (
    TS,
    Subscription,
    bus_subscribers,
    heartbeat,
    live_socket,
    overflow,
    own_server,
    post_activity,
    post_events,
    post_theirs_then_ours,
    server_logs,
    streaming,
    subscribed,
    team_satellites,
    until_membership,
    until_subscribed,
)
from tests.fixtures.people import PASSWORD
from tests.fixtures.satellites import SatelliteFactory, TestSatellite

Json = dict[str, Any]

STATUS = """subscription($teamId: ID) { satelliteStatusChanged(teamId: $teamId) {
  satellite { id status online } online previousStatus at } }"""
EVENTS = """subscription($satelliteId: ID, $teamId: ID, $types: [String!]) {
  satelliteEvents(satelliteId: $satelliteId, teamId: $teamId, types: $types) {
    id type timestamp satelliteId teamId data } }"""
COMMANDS = """subscription($satelliteId: ID) { commandUpdated(satelliteId: $satelliteId) {
  id satelliteId status commandType result } }"""
METRICS = """subscription($satelliteId: ID!) { satelliteMetrics(satelliteId: $satelliteId) {
  satelliteId timestamp cpuUsagePercent memoryUsageMb processCount } }"""


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


async def run_health_check(rt: Runtime, http: aiohttp.ClientSession, satellite: TestSatellite,
                           result: Json | None = None) -> str:
    """A command enqueued, polled and completed by `satellite`; its id."""
    command = await enqueue_command(rt, satellite_id=satellite.id,
                                    command_type=CommandType.HEALTH_CHECK, actor=CLI_ACTOR)
    await poll(http, satellite)
    body: Json = {"command_id": command.id, "status": "completed"}
    if result is not None:
        body["result"] = result
    await command_result(http, satellite, body)
    return command.id


async def error_code(subscription: Subscription) -> str:
    """The code of the error that ends a subscription (a `next` with errors, then `complete`)."""
    result = await subscription.result()
    assert result.get("errors"), result
    assert (await subscription.final())["type"] == "complete"
    code: str = result["errors"][0]["extensions"]["code"]
    return code


# ---- satelliteStatusChanged -------------------------------------------------------

async def activation_then_maintenance(
    rt: Runtime, http: aiohttp.ClientSession, client: GraphQLClient, satellite: TestSatellite,
    first_heartbeats: Callable[[], Awaitable[object]],
) -> tuple[Json, Json]:
    """The first two status messages after `first_heartbeats()`, then a switch to maintenance."""
    async with subscribed(rt, http, client.session_token, STATUS) as subscription:
        await first_heartbeats()
        await set_satellite_status(rt, satellite.id, SatelliteStatus.MAINTENANCE,
                                   actor=CLI_ACTOR)
        first = (await subscription.next())["satelliteStatusChanged"]
        second = (await subscription.next())["satelliteStatusChanged"]
    return first, second


async def test_first_heartbeat_sends_exactly_one_activation_message(
    rt: Runtime, http: aiohttp.ClientSession, member_a: GraphQLClient, team_a: Team,
    make_satellite: SatelliteFactory,
) -> None:
    [satellite] = await team_satellites(make_satellite, team_a, active=False)

    async def twice() -> None:
        await heartbeat(http, satellite)
        await heartbeat(http, satellite)  # already online and active: no message

    first, second = await activation_then_maintenance(rt, http, member_a, satellite, twice)
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
    [satellite] = await team_satellites(make_satellite, team_a, active=False)

    def four_at_once() -> Awaitable[object]:
        return asyncio.gather(*(heartbeat(http, satellite) for _ in range(4)))

    first, second = await activation_then_maintenance(rt, http, member_a, satellite,
                                                      four_at_once)
    assert (first["satellite"]["status"], first["previousStatus"]) == ("ACTIVE", "INACTIVE")
    assert (second["satellite"]["status"], second["previousStatus"]) == (
        "MAINTENANCE", "ACTIVE")


async def test_status_changes_of_another_team_are_invisible(
    rt: Runtime, http: aiohttp.ClientSession, member_a: GraphQLClient, team_a: Team,
    team_b: Team, make_satellite: SatelliteFactory,
) -> None:
    theirs, ours = await team_satellites(make_satellite, team_b, team_a, active=False)
    async with subscribed(rt, http, member_a.session_token, STATUS) as subscription:
        await heartbeat(http, theirs)
        await heartbeat(http, ours)
        message = (await subscription.next())["satelliteStatusChanged"]
    assert message["satellite"]["id"] == ours.id


async def test_team_filter_and_global_satellites(
    rt: Runtime, http: aiohttp.ClientSession, member_a: GraphQLClient, team_a: Team,
    make_satellite: SatelliteFactory,
) -> None:
    shared = await make_satellite(satellite_type=SatelliteType.GLOBAL, active=False)
    [ours] = await team_satellites(make_satellite, team_a, active=False)
    token = member_a.session_token
    async with subscribed(rt, http, token, STATUS) as everything, \
            subscribed(rt, http, token, STATUS, {"teamId": team_a.id}) as only_team:
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
    other, satellite = await team_satellites(make_satellite, team_a, team_a)
    async with subscribed(rt, http, member_a.session_token, METRICS,
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
    [theirs] = await team_satellites(make_satellite, team_b)
    async with live_socket(http, token=member_a.session_token) as socket:
        forbidden = await socket.subscribe(METRICS, {"satelliteId": shared.id})
        assert await error_code(Subscription(socket, forbidden)) == "FORBIDDEN"
        hidden = await socket.subscribe(METRICS, {"satelliteId": theirs.id})
        assert await error_code(Subscription(socket, hidden)) == "NOT_FOUND"

    admin = await graphql_as(global_role=GlobalRole.GLOBAL_ADMIN)
    async with subscribed(rt, http, admin.session_token, METRICS,
                          {"satelliteId": shared.id}) as subscription:
        await heartbeat(http, shared, cpu=7.0)
        assert (await subscription.next())["satelliteMetrics"]["cpuUsagePercent"] == 7.0


# ---- satelliteEvents --------------------------------------------------------------

async def test_event_batch_reaches_event_subscribers_of_its_team_only(
    rt: Runtime, http: aiohttp.ClientSession, member_a: GraphQLClient, team_a: Team,
    team_b: Team, make_satellite: SatelliteFactory,
) -> None:
    ours, theirs = await team_satellites(make_satellite, team_a, team_b)
    async with subscribed(rt, http, member_a.session_token, EVENTS) as subscription:
        event_id = await post_theirs_then_ours(http, theirs, team_b.id, ours, team_a.id,
                                               requests=11)
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
    async with subscribed(rt, http, member_a.session_token, EVENTS,
                          {"satelliteId": shared.id}) as subscription:
        ours = await post_theirs_then_ours(http, shared, team_b.id, shared, team_a.id)
        event = (await subscription.next())["satelliteEvents"]
    assert (event["id"], event["teamId"]) == (ours, team_a.id)


async def test_event_filters_by_satellite_and_type(
    rt: Runtime, http: aiohttp.ClientSession, member_a: GraphQLClient, team_a: Team,
    make_satellite: SatelliteFactory,
) -> None:
    one, two = await team_satellites(make_satellite, team_a, team_a)
    async with subscribed(rt, http, member_a.session_token, EVENTS,
                          {"satelliteId": two.id, "types": ["mcp.client.activity"]}) as sub:
        await post_activity(http, one, team_a.id)
        # wrong type (stored or not, never sent)
        await post_events(http, two, [server_logs(team_a.id)])
        wanted = await post_activity(http, two, team_a.id, requests=3)
        event = (await sub.next())["satelliteEvents"]
    assert event["id"] == wanted


async def test_events_of_a_satellite_outside_the_scope_are_not_found(
    http: aiohttp.ClientSession, member_a: GraphQLClient, team_b: Team,
    make_satellite: SatelliteFactory,
) -> None:
    [theirs] = await team_satellites(make_satellite, team_b)
    async with live_socket(http, token=member_a.session_token) as socket:
        for query in (EVENTS, COMMANDS):
            operation = await socket.subscribe(query, {"satelliteId": theirs.id})
            assert await error_code(Subscription(socket, operation)) == "NOT_FOUND"


# ---- commandUpdated ---------------------------------------------------------------

async def test_command_result_reaches_command_subscribers_of_its_team_only(
    rt: Runtime, http: aiohttp.ClientSession, member_a: GraphQLClient, team_a: Team,
    team_b: Team, make_satellite: SatelliteFactory,
) -> None:
    ours, theirs = await team_satellites(make_satellite, team_a, team_b)
    async with subscribed(rt, http, member_a.session_token, COMMANDS) as subscription:
        await run_health_check(rt, http, theirs)
        command_id = await run_health_check(rt, http, ours, {"healthy": True})
        seen: list[Json] = []
        while not seen or seen[-1]["status"] != "COMPLETED":
            seen.append((await subscription.next())["commandUpdated"])
    assert {update["id"] for update in seen} == {command_id}
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
    [satellite] = await team_satellites(make_satellite, team_a)
    for headers in ({"Authorization": f"Bearer {member_a.session_token}"},
                    {"Cookie": f"gs_session={member_a.session_token}"}):
        async with live_socket(http, headers=headers) as socket:
            before = bus_subscribers(rt)
            await socket.subscribe(METRICS, {"satelliteId": satellite.id})
            await until_subscribed(rt, before)
            await heartbeat(http, satellite)
            message = await socket.receive()
            assert message["payload"]["data"]["satelliteMetrics"]["satelliteId"] == satellite.id


async def test_logout_closes_the_sessions_subscriptions(
    rt: Runtime, http: aiohttp.ClientSession, member_a: GraphQLClient,
) -> None:
    async with subscribed(rt, http, member_a.session_token, EVENTS) as subscription:
        assert await member_a.data("mutation { logout }") == {"logout": True}
        assert await subscription.socket.closed_with() == 4403
    async with live_socket(http, token=member_a.session_token, acknowledged=False) as socket:
        assert await socket.closed_with() == 4403  # the token is gone for good


async def test_a_session_expiring_while_idle_closes_its_subscriptions_and_streams(
    rt: Runtime, http: aiohttp.ClientSession, member_a: GraphQLClient, member_ab: GraphQLClient,
) -> None:
    expired = session_digest(rt, member_a.session_token)
    async with subscribed(rt, http, member_a.session_token, EVENTS) as subscription, \
            streaming(rt, http, "/api/stream/satellites", member_a.session_token) as stream, \
            subscribed(rt, http, member_ab.session_token, EVENTS) as still_valid:
        # Seven days without use, as far as the session row knows.
        await Session.filter(id=expired).update(expires_at=utcnow() - timedelta(seconds=1))
        assert await subscription.socket.closed_with() == 4403  # the sessions job ran
        assert await stream.ended()
        assert await Session.filter(id=expired).count() == 0
        assert not still_valid.socket.ws.closed
    assert await member_a.data("{ me { id } }") == {"me": None}  # signed out
    assert (await member_ab.data("{ me { id } }"))["me"]["id"] == member_ab.user_id


async def test_password_change_closes_the_other_sessions_subscriptions(
    rt: Runtime, http: aiohttp.ClientSession, member_a: GraphQLClient,
) -> None:
    assert member_a.user is not None
    session = GraphQLClient(http, await log_in(http, member_a.user.email))
    async with subscribed(rt, http, member_a.session_token, EVENTS) as subscription:
        assert await session.data(
            "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c,"
            " newPassword: $n) }", {"c": PASSWORD, "n": "another long password 123"},
        ) == {"changePassword": True}
        assert await subscription.socket.closed_with() == 4403


async def test_removed_member_stops_seeing_the_teams_messages(
    rt: Runtime, http: aiohttp.ClientSession, member_ab: GraphQLClient, team_a: Team,
    team_b: Team, make_satellite: SatelliteFactory,
) -> None:
    sat_a, sat_b = await team_satellites(make_satellite, team_a, team_b)
    user_id = member_ab.user_id
    async with subscribed(rt, http, member_ab.session_token, EVENTS) as subscription:
        seen_a = await post_activity(http, sat_a, team_a.id)
        assert (await subscription.next())["satelliteEvents"]["id"] == seen_a
        await remove_team_member(rt, team_a.id, user_id, actor=CLI_ACTOR)
        await until_membership(rt, user_id, team_a.id, member=False)
        # Now team A is the other team: its event first, then team B's.
        seen_b = await post_theirs_then_ours(http, sat_a, team_a.id, sat_b, team_b.id)
        assert (await subscription.next())["satelliteEvents"]["id"] == seen_b
        # Added again: the team's messages come back without resubscribing.
        await add_team_member(rt, team_a.id, user_id, TeamRole.TEAM_USER, actor=CLI_ACTOR)
        await until_membership(rt, user_id, team_a.id, member=True)
        again = await post_activity(http, sat_a, team_a.id)
        assert (await subscription.next())["satelliteEvents"]["id"] == again


# ---- a subscriber that falls behind, shutdown ----------------------------------------

async def test_a_subscriber_that_falls_behind_gets_a_final_error(tmp_path: Path) -> None:
    async with own_server(tmp_path, bus=InProcessBus(queue_size=4)) as own, \
            subscribed(own.rt, own.http, own.admin_token, EVENTS) as subscription:
        overflow(own.rt)
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
    [ours] = await team_satellites(make_satellite, team_a)
    async with subscribed(rt, http, member_a.session_token, EVENTS) as subscription:
        await rt.bus.publish("satellite.events", {
            "id": "1", "satellite_id": ours.id, "team_id": team_a.id,
            "type": "subscriber_dropped", "timestamp": TS, "data": {}})
        event_id = await post_activity(http, ours, team_a.id)
        assert (await subscription.next())["satelliteEvents"]["type"] == "subscriber_dropped"
        assert (await subscription.next())["satelliteEvents"]["id"] == event_id


async def test_shutdown_closes_open_subscriptions(tmp_path: Path) -> None:
    async with own_server(tmp_path) as own, \
            subscribed(own.rt, own.http, own.admin_token, STATUS) as subscription:
        closing = asyncio.create_task(own.server.close())
        assert await subscription.socket.closed_with() == 1001
        await closing
