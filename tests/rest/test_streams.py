"""SSE streams over real HTTP (design.md §5): same scope and payloads as the subscriptions.

Isolation is proven by order: the other team's message is caused first, the
caller's own second, and the first event that arrives must be the caller's own.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from app.bus import InProcessBus
from app.main import create_app
from app.models import Team
from app.models.enums import GlobalRole, SatelliteType, TeamRole
from app.rest.context import RUNTIME_KEY
from app.services.actors import CLI_ACTOR
from app.services.runtime import Runtime, build_runtime
from app.services.teams import remove_team_member
from app.services.users import create_user
from tests.fixtures.graphql import LOGIN, ClientFactory, GraphQLClient
from tests.fixtures.live import streaming
from tests.fixtures.people import PASSWORD, TeamFactory
from tests.fixtures.satellites import SatelliteFactory, TestSatellite
from tests.fixtures.server import eventually, make_settings

Json = dict[str, Any]
TS = "2026-01-02T03:04:05.000Z"
EVENTS = "/api/stream/events"
SATELLITES = "/api/stream/satellites"


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


async def heartbeat(http: aiohttp.ClientSession, satellite: TestSatellite) -> None:
    body = {"status": "active", "system_metrics": {"cpu_usage_percent": 1.0,
                                                   "memory_usage_mb": 64},
            "processes": [], "error_count": 0}
    async with http.post(satellite.path("heartbeat"), json=body,
                         headers=satellite.headers) as response:
        assert response.status == 200, await response.text()


@pytest.fixture
async def team_a(make_team: TeamFactory) -> Team:
    return await make_team()


@pytest.fixture
async def team_b(make_team: TeamFactory) -> Team:
    return await make_team()


@pytest.fixture
async def member_a(graphql_as: ClientFactory, team_a: Team) -> GraphQLClient:
    return await graphql_as(teams={team_a.id: TeamRole.TEAM_USER})


def token_of(client: GraphQLClient) -> str:
    assert client.token is not None
    return client.token


async def team_satellite(make_satellite: SatelliteFactory, team: Team,
                         active: bool = True) -> TestSatellite:
    return await make_satellite(satellite_type=SatelliteType.TEAM, team_id=team.id,
                                active=active)


# ---- events -------------------------------------------------------------------------

async def test_event_stream_sends_the_callers_events_only(
    rt: Runtime, http: aiohttp.ClientSession, member_a: GraphQLClient, team_a: Team,
    team_b: Team, make_satellite: SatelliteFactory,
) -> None:
    ours = await team_satellite(make_satellite, team_a)
    theirs = await team_satellite(make_satellite, team_b)
    async with streaming(rt, http, EVENTS, token_of(member_a)) as stream:
        await post_events(http, theirs, [activity(team_b.id)])
        [event_id] = await post_events(http, ours, [activity(team_a.id, requests=5)])
        event = await stream.next()
    assert (event.id, event.event) == (event_id, "mcp.client.activity")
    assert event.data == {
        "id": event_id, "type": "mcp.client.activity", "timestamp": event.data["timestamp"],
        "satelliteId": ours.id, "teamId": team_a.id,
        "data": {"team_id": team_a.id, "request_count": 5, "tool_call_count": 3,
                 "last_activity_at": TS},
    }
    assert event.data["timestamp"].startswith("2026-01-02T03:04:05")


async def test_event_stream_filters_by_satellite_team_and_types(
    rt: Runtime, http: aiohttp.ClientSession, graphql_as: ClientFactory, team_a: Team,
    team_b: Team, make_satellite: SatelliteFactory,
) -> None:
    person = await graphql_as(teams={team_a.id: TeamRole.TEAM_USER,
                                     team_b.id: TeamRole.TEAM_USER})
    one = await team_satellite(make_satellite, team_a)
    two = await team_satellite(make_satellite, team_a)
    other_team = await team_satellite(make_satellite, team_b)
    logs = {"type": "mcp.server.logs", "timestamp": TS,
            "data": {"installation_id": None, "team_id": team_a.id,
                     "logs": [{"level": "info", "message": "ready", "timestamp": TS}]}}
    params = {"satellite_id": two.id, "team_id": team_a.id, "types": "mcp.client.activity"}
    async with streaming(rt, http, EVENTS, token_of(person), params) as stream:
        await post_events(http, one, [activity(team_a.id)])
        await post_events(http, other_team, [activity(team_b.id)])
        await post_events(http, two, [logs])
        [wanted] = await post_events(http, two, [activity(team_a.id)])
        assert (await stream.next()).id == wanted


async def test_last_event_id_resumes_from_the_log_then_continues_live(
    rt: Runtime, http: aiohttp.ClientSession, member_a: GraphQLClient, team_a: Team,
    team_b: Team, make_satellite: SatelliteFactory,
) -> None:
    ours = await team_satellite(make_satellite, team_a)
    theirs = await team_satellite(make_satellite, team_b)
    [seen] = await post_events(http, ours, [activity(team_a.id, requests=1)])
    missed_1 = (await post_events(http, ours, [activity(team_a.id, requests=2)]))[0]
    await post_events(http, theirs, [activity(team_b.id)])  # in the log, not the caller's
    missed_2 = (await post_events(http, ours, [activity(team_a.id, requests=3)]))[0]
    async with streaming(rt, http, EVENTS, token_of(member_a),
                         headers={"Last-Event-Id": seen}) as stream:
        replayed = [await stream.next(), await stream.next()]
        [live] = await post_events(http, ours, [activity(team_a.id, requests=4)])
        following = await stream.next()
    assert [event.id for event in replayed] == [missed_1, missed_2]
    assert [event.data["data"]["request_count"] for event in replayed] == [2, 3]
    assert replayed[0].data["satelliteId"] == ours.id
    assert following.id == live  # no duplicate of a replayed event, no gap


async def test_resume_from_an_up_to_date_cursor_sends_only_new_events(
    rt: Runtime, http: aiohttp.ClientSession, member_a: GraphQLClient, team_a: Team,
    make_satellite: SatelliteFactory,
) -> None:
    ours = await team_satellite(make_satellite, team_a)
    [last] = await post_events(http, ours, [activity(team_a.id)])
    async with streaming(rt, http, EVENTS, token_of(member_a),
                         headers={"Last-Event-Id": last}) as stream:
        [new] = await post_events(http, ours, [activity(team_a.id)])
        assert (await stream.next()).id == new


# ---- satellites -------------------------------------------------------------------

async def test_satellite_stream_sends_visible_status_changes_only(
    rt: Runtime, http: aiohttp.ClientSession, member_a: GraphQLClient, team_a: Team,
    team_b: Team, make_satellite: SatelliteFactory,
) -> None:
    theirs = await team_satellite(make_satellite, team_b, active=False)
    ours = await team_satellite(make_satellite, team_a, active=False)
    async with streaming(rt, http, SATELLITES, token_of(member_a)) as stream:
        await heartbeat(http, theirs)
        await heartbeat(http, ours)
        event = await stream.next()
    assert (event.id, event.event) == (None, "satellite.status")
    assert event.data == {
        "satellite": {"id": ours.id, "status": "ACTIVE", "online": True},
        "online": True, "previousStatus": "INACTIVE", "at": event.data["at"],
    }


async def test_satellite_stream_team_filter(
    rt: Runtime, http: aiohttp.ClientSession, member_a: GraphQLClient, team_a: Team,
    make_satellite: SatelliteFactory,
) -> None:
    shared = await make_satellite(satellite_type=SatelliteType.GLOBAL, active=False)
    ours = await team_satellite(make_satellite, team_a, active=False)
    async with streaming(rt, http, SATELLITES, token_of(member_a),
                         {"team_id": team_a.id}) as stream:
        await heartbeat(http, shared)
        await heartbeat(http, ours)
        assert (await stream.next()).data["satellite"]["id"] == ours.id


# ---- authentication and scope -------------------------------------------------------

@pytest.mark.parametrize("path", [EVENTS, SATELLITES])
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-session"}])
async def test_streams_need_a_session(
    http: aiohttp.ClientSession, path: str, headers: dict[str, str]
) -> None:
    async with http.get(path, headers=headers) as response:
        assert response.status == 401
        assert response.content_type == "application/json"
        assert "error" in await response.json()


async def test_cookie_authenticates_a_stream(
    rt: Runtime, http: aiohttp.ClientSession, member_a: GraphQLClient, team_a: Team,
    make_satellite: SatelliteFactory,
) -> None:
    ours = await team_satellite(make_satellite, team_a)
    async with streaming(rt, http, EVENTS, "ignored",
                         headers={"Authorization": "",
                                  "Cookie": f"gs_session={token_of(member_a)}"}) as stream:
        [event_id] = await post_events(http, ours, [activity(team_a.id)])
        assert (await stream.next()).id == event_id


async def test_a_satellite_outside_the_scope_is_not_found(
    http: aiohttp.ClientSession, member_a: GraphQLClient, team_b: Team,
    make_satellite: SatelliteFactory,
) -> None:
    theirs = await team_satellite(make_satellite, team_b)
    async with http.get(EVENTS, params={"satellite_id": theirs.id},
                        headers={"Authorization": f"Bearer {token_of(member_a)}"}) as response:
        assert response.status == 404


async def test_a_malformed_cursor_is_a_validation_error(
    http: aiohttp.ClientSession, member_a: GraphQLClient,
) -> None:
    async with http.get(EVENTS, headers={"Authorization": f"Bearer {token_of(member_a)}",
                                         "Last-Event-Id": "yesterday"}) as response:
        assert response.status == 400


async def test_logout_ends_the_sessions_streams(
    rt: Runtime, http: aiohttp.ClientSession, member_a: GraphQLClient,
) -> None:
    async with streaming(rt, http, SATELLITES, token_of(member_a)) as stream:
        assert await member_a.data("mutation { logout }") == {"logout": True}
        assert await stream.ended()


async def test_removed_member_stops_receiving_the_teams_events(
    rt: Runtime, http: aiohttp.ClientSession, graphql_as: ClientFactory, team_a: Team,
    team_b: Team, make_satellite: SatelliteFactory,
) -> None:
    person = await graphql_as(teams={team_a.id: TeamRole.TEAM_USER,
                                     team_b.id: TeamRole.TEAM_USER})
    assert person.user is not None
    user_id = person.user.id
    sat_a = await team_satellite(make_satellite, team_a)
    sat_b = await team_satellite(make_satellite, team_b)
    async with streaming(rt, http, EVENTS, token_of(person)) as stream:
        await remove_team_member(rt, team_a.id, user_id, actor=CLI_ACTOR)

        async def reloaded() -> bool:
            return all(team_a.id not in (c.principal.team_ids if c.principal else ())
                       for c in rt.live.of_user(user_id))

        await eventually(reloaded)
        await post_events(http, sat_a, [activity(team_a.id)])
        [theirs] = await post_events(http, sat_b, [activity(team_b.id)])
        assert (await stream.next()).id == theirs


async def test_a_stream_that_falls_behind_gets_a_final_error_event(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    app = create_app(settings, build_runtime(settings, bus=InProcessBus(queue_size=4)))
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    rt = app[RUNTIME_KEY]
    try:
        user = await create_user(rt, email="slow@example.com", password=PASSWORD,
                                 global_role=GlobalRole.GLOBAL_ADMIN, actor=CLI_ACTOR)
        async with aiohttp.ClientSession(base_url=str(server.make_url("/"))) as http:
            login = await GraphQLClient(http).data(LOGIN, {"email": user.email,
                                                          "password": PASSWORD})
            async with streaming(rt, http, EVENTS, login["login"]["token"]) as stream:
                bus = rt.bus
                assert isinstance(bus, InProcessBus)
                for number in range(10):  # no await in between: the queue overflows
                    bus.publish_nowait("satellite.events", {
                        "id": str(number + 1), "satellite_id": "s", "team_id": None,
                        "type": "t", "timestamp": TS, "data": {}})
                event = await stream.next()
                while event.event != "error":
                    event = await stream.next()
                assert event.data["reason"] == "subscriber_dropped"
                assert await stream.ended()
    finally:
        await server.close()


async def test_shutdown_ends_open_streams_without_hanging(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    app = create_app(settings)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    rt = app[RUNTIME_KEY]
    try:
        user = await create_user(rt, email="stream@example.com", password=PASSWORD,
                                 global_role=GlobalRole.GLOBAL_ADMIN, actor=CLI_ACTOR)
        async with aiohttp.ClientSession(base_url=str(server.make_url("/"))) as http:
            login = await GraphQLClient(http).data(LOGIN, {"email": user.email,
                                                          "password": PASSWORD})
            token = login["login"]["token"]
            async with streaming(rt, http, EVENTS, token) as events, \
                    streaming(rt, http, SATELLITES, token) as satellites:
                closing = asyncio.create_task(server.close())
                assert await events.ended()
                assert await satellites.ended()
                await closing
    finally:
        await server.close()
