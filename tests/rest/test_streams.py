"""SSE streams over real HTTP (docs/graphql.md §6): same scope and payloads as the
subscriptions.

Isolation is proven by order: the other team's message is caused first, the
caller's own second, and the first event that arrives must be the caller's own.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from app.bus import InProcessBus
from app.models import Team
from app.models.enums import SatelliteType
from app.runtime import Runtime
from app.services.common.actors import CLI_ACTOR
from app.services.people.teams import remove_team_member
from tests.fixtures.graphql import GraphQLClient
from tests.fixtures.live import (
    TS,
    heartbeat,
    overflow,
    own_server,
    post_activity,
    post_events,
    post_theirs_then_ours,
    server_logs,
    streaming,
    team_satellites,
    until_membership,
)
from tests.fixtures.satellites import SatelliteFactory, TestSatellite

EVENTS = "/api/stream/events"
SATELLITES = "/api/stream/satellites"
ALERTS = "/api/stream/alerts"


# ---- events -------------------------------------------------------------------------

async def test_event_stream_sends_the_callers_events_only(
    rt: Runtime, http: aiohttp.ClientSession, member_a: GraphQLClient, team_a: Team,
    team_b: Team, make_satellite: SatelliteFactory,
) -> None:
    ours, theirs = await team_satellites(make_satellite, team_a, team_b)
    async with streaming(rt, http, EVENTS, member_a.session_token) as stream:
        event_id = await post_theirs_then_ours(http, theirs, team_b.id, ours, team_a.id,
                                               requests=5)
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
    rt: Runtime, http: aiohttp.ClientSession, member_ab: GraphQLClient, team_a: Team,
    team_b: Team, make_satellite: SatelliteFactory,
) -> None:
    one, two, other_team = await team_satellites(make_satellite, team_a, team_a, team_b)
    params = {"satellite_id": two.id, "team_id": team_a.id, "types": "mcp.client.activity"}
    async with streaming(rt, http, EVENTS, member_ab.session_token, params) as stream:
        await post_activity(http, one, team_a.id)
        await post_activity(http, other_team, team_b.id)
        await post_events(http, two, [server_logs(team_a.id)])
        wanted = await post_activity(http, two, team_a.id)
        assert (await stream.next()).id == wanted


async def test_last_event_id_resumes_from_the_log_then_continues_live(
    rt: Runtime, http: aiohttp.ClientSession, member_a: GraphQLClient, team_a: Team,
    team_b: Team, make_satellite: SatelliteFactory,
) -> None:
    ours, theirs = await team_satellites(make_satellite, team_a, team_b)
    seen = await post_activity(http, ours, team_a.id, requests=1)
    missed_1 = await post_activity(http, ours, team_a.id, requests=2)
    await post_activity(http, theirs, team_b.id)  # in the log, not the caller's
    missed_2 = await post_activity(http, ours, team_a.id, requests=3)
    async with streaming(rt, http, EVENTS, member_a.session_token,
                         headers={"Last-Event-Id": seen}) as stream:
        replayed = [await stream.next(), await stream.next()]
        live = await post_activity(http, ours, team_a.id, requests=4)
        following = await stream.next()
    assert [event.id for event in replayed] == [missed_1, missed_2]
    assert [event.data["data"]["request_count"] for event in replayed] == [2, 3]
    assert replayed[0].data["satelliteId"] == ours.id
    assert following.id == live  # no duplicate of a replayed event, no gap


async def test_resume_from_an_up_to_date_cursor_sends_only_new_events(
    rt: Runtime, http: aiohttp.ClientSession, member_a: GraphQLClient, team_a: Team,
    make_satellite: SatelliteFactory,
) -> None:
    [ours] = await team_satellites(make_satellite, team_a)
    last = await post_activity(http, ours, team_a.id)
    async with streaming(rt, http, EVENTS, member_a.session_token,
                         headers={"Last-Event-Id": last}) as stream:
        new = await post_activity(http, ours, team_a.id)
        assert (await stream.next()).id == new


# ---- satellites -------------------------------------------------------------------

async def test_satellite_stream_sends_visible_status_changes_only(
    rt: Runtime, http: aiohttp.ClientSession, member_a: GraphQLClient, team_a: Team,
    team_b: Team, make_satellite: SatelliteFactory,
) -> None:
    theirs, ours = await team_satellites(make_satellite, team_b, team_a, active=False)
    async with streaming(rt, http, SATELLITES, member_a.session_token) as stream:
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
    [ours] = await team_satellites(make_satellite, team_a, active=False)
    async with streaming(rt, http, SATELLITES, member_a.session_token,
                         {"team_id": team_a.id}) as stream:
        await heartbeat(http, shared)
        await heartbeat(http, ours)
        assert (await stream.next()).data["satellite"]["id"] == ours.id


async def config_error(http: aiohttp.ClientSession, satellite: TestSatellite) -> None:
    """A `config.error` event: the alert engine opens a `config_error` alert at once."""
    body = {"events": [{"type": "config.error", "timestamp": TS, "data": {
        "error_type": "network", "error_message": "connection refused"}}]}
    async with http.post(satellite.path("events"), json=body,
                         headers=satellite.headers) as response:
        assert response.status == 200, await response.text()


async def test_alert_stream_sends_the_callers_alerts_only(
    rt: Runtime, http: aiohttp.ClientSession, member_a: GraphQLClient, team_a: Team,
    team_b: Team, make_satellite: SatelliteFactory,
) -> None:
    theirs, ours = await team_satellites(make_satellite, team_b, team_a)
    async with streaming(rt, http, ALERTS, member_a.session_token) as stream:
        await config_error(http, theirs)
        await config_error(http, ours)
        event = await stream.next()
    assert (event.id, event.event) == (None, "alert.opened")
    assert (event.data["satellite_id"], event.data["team_id"]) == (ours.id, team_a.id)
    assert (event.data["rule"], event.data["state"]) == ("config_error", "open")


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
    [ours] = await team_satellites(make_satellite, team_a)
    cookie_only = {"Authorization": "", "Cookie": f"gs_session={member_a.session_token}"}
    async with streaming(rt, http, EVENTS, "ignored", headers=cookie_only) as stream:
        event_id = await post_activity(http, ours, team_a.id)
        assert (await stream.next()).id == event_id


async def test_a_satellite_outside_the_scope_is_not_found(
    http: aiohttp.ClientSession, member_a: GraphQLClient, team_b: Team,
    make_satellite: SatelliteFactory,
) -> None:
    [theirs] = await team_satellites(make_satellite, team_b)
    async with http.get(EVENTS, params={"satellite_id": theirs.id},
                        headers={"Authorization": f"Bearer {member_a.session_token}"}
                        ) as response:
        assert response.status == 404


async def test_a_malformed_cursor_is_a_validation_error(
    http: aiohttp.ClientSession, member_a: GraphQLClient,
) -> None:
    async with http.get(EVENTS, headers={"Authorization": f"Bearer {member_a.session_token}",
                                         "Last-Event-Id": "yesterday"}) as response:
        assert response.status == 400


async def test_logout_ends_the_sessions_streams(
    rt: Runtime, http: aiohttp.ClientSession, member_a: GraphQLClient,
) -> None:
    async with streaming(rt, http, SATELLITES, member_a.session_token) as stream:
        assert await member_a.data("mutation { logout }") == {"logout": True}
        assert await stream.ended()


async def test_removed_member_stops_receiving_the_teams_events(
    rt: Runtime, http: aiohttp.ClientSession, member_ab: GraphQLClient, team_a: Team,
    team_b: Team, make_satellite: SatelliteFactory,
) -> None:
    sat_a, sat_b = await team_satellites(make_satellite, team_a, team_b)
    async with streaming(rt, http, EVENTS, member_ab.session_token) as stream:
        await remove_team_member(rt, team_a.id, member_ab.user_id, actor=CLI_ACTOR)
        await until_membership(rt, member_ab.user_id, team_a.id, member=False)
        # Now team A is the other team: its event first, then team B's.
        theirs = await post_theirs_then_ours(http, sat_a, team_a.id, sat_b, team_b.id)
        assert (await stream.next()).id == theirs


# ---- a stream that falls behind, shutdown ---------------------------------------------

async def test_a_stream_that_falls_behind_gets_a_final_error_event(tmp_path: Path) -> None:
    async with own_server(tmp_path, bus=InProcessBus(queue_size=4)) as own, \
            streaming(own.rt, own.http, EVENTS, own.admin_token) as stream:
        overflow(own.rt)
        event = await stream.next()
        while event.event != "error":
            event = await stream.next()
        assert event.data["reason"] == "subscriber_dropped"
        assert await stream.ended()


async def test_shutdown_ends_open_streams_without_hanging(tmp_path: Path) -> None:
    async with own_server(tmp_path) as own:
        rt, http, token = own.rt, own.http, own.admin_token
        async with streaming(rt, http, EVENTS, token) as events, \
                streaming(rt, http, SATELLITES, token) as satellites:
            closing = asyncio.create_task(own.server.close())
            assert await events.ended()
            assert await satellites.ended()
            await closing
