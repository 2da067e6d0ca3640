"""`satelliteEvents` over a real websocket delivers every event type a satellite sends:
the reference satellite's whole registry, and a type this server does not know
(docs/protocol.md §10, "Unknown types")."""

from __future__ import annotations

import aiohttp

from app.models import Team
from app.runtime import Runtime
from tests.compat.reference_events import REGISTRY_TYPES, Fleet, iso, registry_batch
from tests.compat.reference_events import START as REFERENCE_START
from tests.fixtures.graphql import GraphQLClient
from tests.fixtures.live import post_events, subscribed, team_satellites
from tests.fixtures.satellites import SatelliteFactory

EVENTS = """subscription($satelliteId: ID, $types: [String!]) {
  satelliteEvents(satelliteId: $satelliteId, types: $types) {
    id type timestamp satelliteId teamId data } }"""


def paused(team_id: str) -> dict[str, object]:
    return {"type": "mcp.server.paused", "timestamp": iso(REFERENCE_START),
            "data": {"server_id": "stdio-files-7f3a", "team_id": team_id,
                     "pause_reason": "maintenance"}}


async def test_an_unknown_type_reaches_subscribers_that_ask_for_it(
    rt: Runtime, http: aiohttp.ClientSession, member_a: GraphQLClient, team_a: Team,
    make_satellite: SatelliteFactory,
) -> None:
    [ours] = await team_satellites(make_satellite, team_a)
    async with subscribed(rt, http, member_a.session_token, EVENTS,
                          {"satelliteId": ours.id, "types": ["mcp.server.paused"]}) as sub:
        [event_id] = await post_events(http, ours, [paused(team_a.id)])
        event = (await sub.next())["satelliteEvents"]
    assert (event["id"], event["type"], event["satelliteId"], event["teamId"]) == (
        event_id, "mcp.server.paused", ours.id, team_a.id)
    assert event["data"]["pause_reason"] == "maintenance"


async def test_every_registry_type_and_an_unknown_one_reach_subscribers_in_order(
    rt: Runtime, http: aiohttp.ClientSession, member_a: GraphQLClient, team_a: Team,
    make_satellite: SatelliteFactory,
) -> None:
    [ours] = await team_satellites(make_satellite, team_a)
    fleet = Fleet(team_a.id, "stdio-files-7f3a", "files-7f3a", "0" * 32)
    async with subscribed(rt, http, member_a.session_token, EVENTS,
                          {"satelliteId": ours.id}) as sub:
        ids = await post_events(http, ours, [*registry_batch(fleet), paused(team_a.id)])
        received = [(await sub.next())["satelliteEvents"] for _ in ids]
    assert [event["id"] for event in received] == ids
    assert [event["type"] for event in received] == [*REGISTRY_TYPES, "mcp.server.paused"]
    assert {event["teamId"] for event in received} == {team_a.id}
