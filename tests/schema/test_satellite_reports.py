"""What satellites report about their clients and themselves, read over GraphQL: client
sessions, config state, resource-limit breaches, and sessions in `usage` (docs/graphql.md).

Everything is reported as a satellite would: event batches over HTTP in the
reference satellite's shapes (docs/protocol.md §10). Each field is read by the
four kinds of people of the role table (test_roles.py), and team A never sees
team B's rows, on team satellites or on a global satellite serving both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from app.config import Settings
from app.models import Team
from app.models.enums import GlobalRole, SatelliteType
from app.services.common.clock import iso as shown
from app.services.common.clock import utcnow
from tests.compat.reference_events import Fleet, iso, registry_event
from tests.fixtures.graphql import ROLES, ClientFactory, GraphQLClient, as_role
from tests.fixtures.live import post_events
from tests.fixtures.queries import counting_queries
from tests.fixtures.satellites import SatelliteFactory, TestSatellite
from tests.fixtures.server import make_settings

Json = dict[str, Any]
VSCODE = ("vscode", "Visual Studio Code/1.96.2 (MCP client)", "203.0.113.24")
CURSOR = ("cursor", "Cursor/0.45.2 (MCP client)", "198.51.100.7")


# ---- events in the reference satellite's shapes ------------------------------------------

def reported(event_type: str, team_id: str | None, at: datetime, **data: Any) -> Json:
    """The reference satellite's `event_type` event at `at`, with `data` changed."""
    event = registry_event(event_type, Fleet(team_id, "0" * 32, "files", "0" * 32))
    event["timestamp"] = iso(at)
    event["data"].update(data)
    return event


def connected(session_id: str, team_id: str, at: datetime,
              client: tuple[str | None, str | None, str | None] = VSCODE) -> Json:
    """A connection; a client detail given as None is left out, as a satellite may."""
    event = reported("mcp.client.connected", team_id, at, session_id=session_id)
    for key, value in zip(("client_type", "user_agent", "ip_address"), client, strict=True):
        if value is None:
            del event["data"][key]
        else:
            event["data"][key] = value
    return event


def disconnected(session_id: str, team_id: str, at: datetime, seconds: float) -> Json:
    return reported("mcp.client.disconnected", team_id, at, session_id=session_id,
                    connection_duration_seconds=seconds, tool_execution_count=4)


def breach(team_id: str, at: datetime, resource_type: str) -> Json:
    return reported("resource.limit.exceeded", team_id, at, resource_type=resource_type,
                    current_value=612.5, limit_value=512)


def refreshed(at: datetime, config_hash: str) -> Json:
    return reported("config.refreshed", None, at, config_hash=config_hash, server_count=3)


def config_error(at: datetime) -> Json:
    return reported("config.error", None, at, error_type="server_error",
                    error_message="upstream answered 502", status_code=502)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """No background work (refresh, jobs, flushes wait an hour): query counts are exact."""
    return make_settings(tmp_path, state_refresh_seconds=3600.0, jobs_interval_seconds=3600.0,
                         flush_interval_seconds=3600.0)


# ---- the world: teams A and B, a team satellite each, a global one serving both ------------

@dataclass
class World:
    team_a: str
    team_b: str
    satellite_a: TestSatellite
    satellite_b: TestSatellite
    shared: TestSatellite  # global, serving both teams
    start: datetime

    async def read(self, client: GraphQLClient, document: str) -> Json:
        """The data of `document`, which may use $a, $b, $shared (satellites), $team (A)."""
        names = {"a": self.satellite_a.id, "b": self.satellite_b.id, "shared": self.shared.id,
                 "team": self.team_a}
        return await client.data(document, {name: value for name, value in names.items()
                                            if f"${name}:" in document})


@pytest.fixture
async def world(http: aiohttp.ClientSession, team_a: Team, team_b: Team,
                make_satellite: SatelliteFactory) -> World:
    satellite_a, satellite_b = [
        await make_satellite(satellite_type=SatelliteType.TEAM, team_id=team.id)
        for team in (team_a, team_b)]
    shared = await make_satellite(satellite_type=SatelliteType.GLOBAL)
    start = (utcnow() - timedelta(hours=2)).replace(microsecond=0)

    def at(minutes: int) -> datetime:
        return start + timedelta(minutes=minutes)

    await post_events(http, satellite_a, [
        connected("a-closed", team_a.id, at(0)), disconnected("a-closed", team_a.id, at(1), 60),
        connected("a-open", team_a.id, at(2), CURSOR), breach(team_a.id, at(3), "memory"),
        refreshed(at(4), "hash-a"),
    ])
    await post_events(http, shared, [
        connected("shared-a", team_a.id, at(1)), connected("shared-b", team_b.id, at(3)),
        breach(team_a.id, at(1), "cpu"), breach(team_b.id, at(2), "processes"),
        refreshed(at(4), "hash-shared"), config_error(at(5)),
    ])
    await post_events(http, satellite_b, [
        connected("b-open", team_b.id, at(0)), breach(team_b.id, at(0), "cpu"),
        refreshed(at(0), "hash-b"),
    ])
    return World(team_a.id, team_b.id, satellite_a, satellite_b, shared, start)


@pytest.fixture
async def client(role: str, world: World, graphql_as: ClientFactory) -> GraphQLClient:
    """The person of the test's parametrized `role` (team A's, unless global)."""
    return await as_role(graphql_as, role, world.team_a)


def nodes(connection: Json) -> list[Json]:
    return [edge["node"] for edge in connection["edges"]]


# ---- client sessions ------------------------------------------------------------------------

SESSION = """sessionId teamId satelliteId clientType transport open ipAddress userAgent
  connectedAt disconnectedAt durationSeconds toolExecutionCount disconnectReason"""
SESSIONS = f"""query($a: ID!, $shared: ID!, $team: ID!) {{
  a: satellite(id: $a) {{ clientSessions {{ totalCount edges {{ node {{ {SESSION} }} }} }} }}
  shared: satellite(id: $shared) {{ clientSessions {{ edges {{ node {{ {SESSION} }} }} }} }}
  team(id: $team) {{ clientSessions {{ edges {{ node {{ {SESSION} }} }} }} }}
}}"""


def session_ids(holder: Json | None) -> list[str] | None:
    if holder is None:
        return None
    return [node["sessionId"] for node in nodes(holder["clientSessions"])]


@pytest.mark.parametrize("role", ROLES)
async def test_client_sessions_are_visible_as_the_table_says(
    role: str, client: GraphQLClient, world: World,
) -> None:
    data = await world.read(client, SESSIONS)

    seen = {name: session_ids(data[name]) for name in ("a", "shared", "team")}
    match role:
        case "global_admin":  # newest first, by when each began
            assert seen == {"a": ["a-open", "a-closed"], "shared": ["shared-b", "shared-a"],
                            "team": ["a-open", "shared-a", "a-closed"]}
        case "team_admin" | "team_user":  # on the global satellite: their own team's only
            assert seen == {"a": ["a-open", "a-closed"], "shared": ["shared-a"],
                            "team": ["a-open", "shared-a", "a-closed"]}
        case _:  # team satellites and teams are out of scope; no team's sessions anywhere
            assert seen == {"a": None, "shared": [], "team": None}
    every = [node for name in ("a", "shared", "team") if data[name]
             for node in nodes(data[name]["clientSessions"])]
    # Where a client connected from: the team's administrators (and global ones) only.
    origin_shown = role in ("global_admin", "team_admin")
    for node in every:
        assert (node["ipAddress"] is not None) is origin_shown, node
        assert (node["userAgent"] is not None) is origin_shown, node


async def test_a_session_shows_what_the_satellite_reported(
    world: World, graphql_as: ClientFactory,
) -> None:
    data = await world.read(await as_role(graphql_as, "team_admin", world.team_a), SESSIONS)
    closed, opened = sorted(nodes(data["a"]["clientSessions"]),
                            key=lambda node: node["sessionId"])

    assert data["a"]["clientSessions"]["totalCount"] == 2
    assert closed == {
        "sessionId": "a-closed", "teamId": world.team_a, "satelliteId": world.satellite_a.id,
        "clientType": "vscode", "transport": "http", "open": False, "ipAddress": VSCODE[2],
        "userAgent": VSCODE[1], "connectedAt": shown(world.start),
        "disconnectedAt": shown(world.start + timedelta(minutes=1)), "durationSeconds": 60.0,
        "toolExecutionCount": 4, "disconnectReason": "client_close",
    }
    assert (opened["open"], opened["clientType"], opened["ipAddress"]) == (
        True, "cursor", CURSOR[2])
    assert opened["disconnectedAt"] is None


async def test_the_open_argument_keeps_open_or_closed_sessions(
    world: World, graphql_as: ClientFactory,
) -> None:
    member = await as_role(graphql_as, "team_user", world.team_a)
    document = """query($team: ID!, $open: Boolean) {
      team(id: $team) { clientSessions(open: $open) { totalCount edges { node { sessionId } } } }
    }"""

    async def listed(open_: bool | None) -> list[str]:
        data = await member.data(document, {"team": world.team_a, "open": open_})
        return [node["sessionId"] for node in nodes(data["team"]["clientSessions"])]

    assert await listed(True) == ["a-open", "shared-a"]
    assert await listed(False) == ["a-closed"]
    assert await listed(None) == ["a-open", "shared-a", "a-closed"]


async def test_a_session_names_the_team_member_the_satellite_reported(
    http: aiohttp.ClientSession, world: World, graphql_as: ClientFactory,
) -> None:
    member = await as_role(graphql_as, "team_user", world.team_a)
    at = world.start + timedelta(minutes=10)
    await post_events(http, world.satellite_a, [reported(
        "mcp.client.activity", world.team_a, at, session_id="a-open",
        user_id=member.user_id, client_name="Cursor", last_activity_at=iso(at))])

    data = await member.data("""query($id: ID!) { satellite(id: $id) {
        clientSessions(open: true) { edges { node { clientName lastActivityAt
                                                    user { id email } } } } } }""",
                             {"id": world.satellite_a.id})

    assert nodes(data["satellite"]["clientSessions"]) == [{
        "clientName": "Cursor", "lastActivityAt": shown(at),
        "user": {"id": member.user_id, "email": member.user.email if member.user else None}}]


async def test_client_sessions_are_paginated_newest_first(
    world: World, graphql_as: ClientFactory,
) -> None:
    admin = await as_role(graphql_as, "global_admin", world.team_a)
    document = """query($team: ID!, $after: String) { team(id: $team) {
        clientSessions(first: 2, after: $after) {
          totalCount pageInfo { hasNextPage endCursor } edges { cursor node { sessionId } } } } }"""

    first = (await admin.data(document, {"team": world.team_a}))["team"]["clientSessions"]
    after = first["pageInfo"]["endCursor"]
    second = (await admin.data(document, {"team": world.team_a, "after": after}))["team"][
        "clientSessions"]

    assert (first["totalCount"], first["pageInfo"]["hasNextPage"]) == (3, True)
    assert [node["sessionId"] for node in nodes(first)] == ["a-open", "shared-a"]
    assert [node["sessionId"] for node in nodes(second)] == ["a-closed"]
    assert second["pageInfo"] == {"hasNextPage": False, "endCursor": second["edges"][-1][
        "cursor"]}
    too_many = ("query($id: ID!) { satellite(id: $id) { clientSessions(first: 101) "
                "{ totalCount } } }")
    assert await admin.error_code(too_many, {"id": world.shared.id}) == "VALIDATION"
    bad_cursor = ("query($id: ID!) { satellite(id: $id) { clientSessions(after: \"nope\") "
                  "{ totalCount } } }")
    assert await admin.error_code(bad_cursor, {"id": world.shared.id}) == "VALIDATION"


# ---- config state ----------------------------------------------------------------------------

CONFIG = """query($a: ID!, $b: ID!, $shared: ID!) {
  a: satellite(id: $a) { configState { configHash serverCount lastError { type } } }
  b: satellite(id: $b) { configState { configHash } }
  shared: satellite(id: $shared) { configState {
    refreshedAt configHash serverCount teamsCount changeDetected fetchDurationMs
    lastError { at type message statusCode } } }
}"""


@pytest.mark.parametrize("role", ROLES)
async def test_config_state_is_visible_with_its_satellite(
    role: str, client: GraphQLClient, world: World,
) -> None:
    data = await world.read(client, CONFIG)

    # A global satellite's state is for whoever sees the satellite: every role.
    assert data["shared"]["configState"] == {
        "refreshedAt": shown(world.start + timedelta(minutes=4)), "configHash": "hash-shared",
        "serverCount": 3, "teamsCount": 2, "changeDetected": True, "fetchDurationMs": 87.0,
        "lastError": {"at": shown(world.start + timedelta(minutes=5)), "type": "server_error",
                      "message": "upstream answered 502", "statusCode": 502},
    }
    own = {"configState": {"configHash": "hash-a", "serverCount": 3, "lastError": None}}
    assert data["a"] == (None if role == "global_user" else own)
    assert data["b"] == ({"configState": {"configHash": "hash-b"}}
                         if role == "global_admin" else None)


async def test_a_refresh_clears_the_last_error_and_an_unreported_state_is_null(
    http: aiohttp.ClientSession, world: World, graphql_as: ClientFactory,
    make_satellite: SatelliteFactory,
) -> None:
    member = await as_role(graphql_as, "team_user", world.team_a)
    silent = await make_satellite()
    await post_events(http, world.shared, [
        refreshed(world.start + timedelta(minutes=6), "hash-new")])

    data = await member.data(CONFIG, {"a": world.satellite_a.id, "b": silent.id,
                                      "shared": world.shared.id})

    assert data["shared"]["configState"]["configHash"] == "hash-new"
    assert data["shared"]["configState"]["lastError"] is None
    assert data["b"] == {"configState": None}


# ---- resource-limit breaches -----------------------------------------------------------------

BREACHES = """query($a: ID!, $shared: ID!, $team: ID!) {
  a: satellite(id: $a) { resourceLimitBreaches { edges { node { resourceType teamId } } } }
  shared: satellite(id: $shared) {
    resourceLimitBreaches { edges { node { resourceType teamId } } } }
  team(id: $team) { resourceLimitBreaches { totalCount edges { node {
    resourceType teamId satelliteId currentValue limitValue occurredAt } } } }
}"""


@pytest.mark.parametrize("role", ROLES)
async def test_resource_limit_breaches_are_visible_to_their_team(
    role: str, client: GraphQLClient, world: World,
) -> None:
    data = await world.read(client, BREACHES)

    def kinds(holder: Json | None) -> list[tuple[str, str]] | None:
        return None if holder is None else [
            (node["resourceType"], node["teamId"])
            for node in nodes(holder["resourceLimitBreaches"])]

    a, b = world.team_a, world.team_b
    match role:
        case "global_admin":
            assert kinds(data["shared"]) == [("processes", b), ("cpu", a)]
        case "team_admin" | "team_user":
            assert kinds(data["shared"]) == [("cpu", a)]
        case _:
            assert kinds(data["shared"]) == []
    if role == "global_user":
        assert (data["a"], data["team"]) == (None, None)
        return
    assert kinds(data["a"]) == [("memory", a)]
    team = data["team"]["resourceLimitBreaches"]
    assert team["totalCount"] == 2
    assert nodes(team) == [  # newest first
        {"resourceType": "memory", "teamId": a, "satelliteId": world.satellite_a.id,
         "currentValue": 612.5, "limitValue": 512.0,
         "occurredAt": shown(world.start + timedelta(minutes=3))},
        {"resourceType": "cpu", "teamId": a, "satelliteId": world.shared.id,
         "currentValue": 612.5, "limitValue": 512.0,
         "occurredAt": shown(world.start + timedelta(minutes=1))},
    ]


async def test_resource_limit_breaches_are_paginated(
    world: World, graphql_as: ClientFactory,
) -> None:
    admin = await as_role(graphql_as, "global_admin", world.team_a)
    document = """query($id: ID!, $after: String) { satellite(id: $id) {
        resourceLimitBreaches(first: 1, after: $after) {
          totalCount pageInfo { hasNextPage endCursor } edges { node { resourceType } } } } }"""

    first = (await admin.data(document, {"id": world.shared.id}))["satellite"][
        "resourceLimitBreaches"]
    second = (await admin.data(document, {"id": world.shared.id,
                                          "after": first["pageInfo"]["endCursor"]}))[
        "satellite"]["resourceLimitBreaches"]

    assert (first["totalCount"], first["pageInfo"]["hasNextPage"]) == (2, True)
    assert [node["resourceType"] for node in nodes(first) + nodes(second)] == [
        "processes", "cpu"]
    assert second["pageInfo"]["hasNextPage"] is False


# ---- usage: sessions and distinct clients per day --------------------------------------------

USAGE = """query($team: ID!, $from: DateTime, $to: DateTime) {
  usage(teamId: $team, from: $from, to: $to) {
    totalCalls totalSessions distinctClients byDay { date calls sessions distinctClients } } }"""


async def test_usage_counts_sessions_and_distinct_clients_per_day(
    http: aiohttp.ClientSession, team_a: Team, team_b: Team, member_a: GraphQLClient,
    make_satellite: SatelliteFactory,
) -> None:
    ours = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=team_a.id)
    shared = await make_satellite()
    today = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    first_day, second_day = today - timedelta(days=3), today - timedelta(days=2)
    anonymous = ("claude", None, None)

    def on(day: datetime, hour: int) -> datetime:
        return day + timedelta(hours=hour)

    await post_events(http, ours, [
        connected("s1", team_a.id, on(first_day, 9)),
        connected("s2", team_a.id, on(first_day, 10)),  # the same client again
        connected("s3", team_a.id, on(first_day, 11), CURSOR),
        disconnected("s3", team_a.id, on(second_day, 1), 3600),  # counts on its first day
        connected("s4", team_a.id, on(second_day, 9)),
        connected("s5", team_a.id, on(second_day, 10), anonymous),
        reported("mcp.tool.executed", team_a.id, on(second_day, 11), server_id="none"),
        disconnected("s6", team_a.id, on(second_day, 12), 60),  # never seen opening
    ])
    await post_events(http, shared, [  # the other team's sessions count for it only
        connected("b1", team_b.id, on(first_day, 9), CURSOR),
        connected("a-on-shared", team_a.id, on(first_day, 12), CURSOR),
    ])

    usage = (await member_a.data(USAGE, {
        "team": team_a.id, "from": iso(first_day), "to": iso(today)}))["usage"]

    assert usage["byDay"] == [
        {"date": first_day.date().isoformat(), "calls": 0, "sessions": 4,
         "distinctClients": 2},
        {"date": second_day.date().isoformat(), "calls": 1, "sessions": 3,
         "distinctClients": 3},  # vscode, the anonymous claude, and s6 (nothing known)
    ]
    # Over the period each client counts once: vscode, cursor, claude, the unknown one.
    assert (usage["totalCalls"], usage["totalSessions"], usage["distinctClients"]) == (1, 7, 4)
    # A period that leaves out the first day leaves out its sessions.
    later = (await member_a.data(USAGE, {
        "team": team_a.id, "from": iso(second_day), "to": iso(today)}))["usage"]
    assert (later["totalSessions"], later["distinctClients"]) == (3, 3)


# ---- no N+1: a relation of many nodes loads in one query ------------------------------

async def test_config_states_and_session_users_cost_the_same_for_any_count(
    http: aiohttp.ClientSession, team_a: Team, member_a: GraphQLClient,
    graphql_as: ClientFactory, make_satellite: SatelliteFactory,
) -> None:
    """`Satellite.configState` and `ClientSession.user` load through DataLoaders: one
    query each, whatever the number of satellites and sessions."""
    admin = await graphql_as(global_role=GlobalRole.GLOBAL_ADMIN)
    dashboard = """query($team: ID!) {
      satellites(first: 100) { edges { node { id configState { configHash lastError { at } } } } }
      team(id: $team) { clientSessions(first: 100) { edges { node { sessionId
                                                                    user { email } } } } }
    }"""
    start = utcnow() - timedelta(hours=1)
    counts: list[int] = []
    built = 0
    for size in (2, 12):
        for number in range(built, size):
            satellite = await make_satellite(satellite_type=SatelliteType.TEAM,
                                             team_id=team_a.id)
            at = start + timedelta(seconds=number)
            session = f"session-{number}"
            await post_events(http, satellite, [
                refreshed(at, f"hash-{number}"), connected(session, team_a.id, at),
                reported("mcp.client.activity", team_a.id, at, session_id=session,
                         user_id=member_a.user_id, last_activity_at=iso(at)),
            ])
        built = size
        await admin.data("{ me { id } }")
        with counting_queries() as statements:
            data = await admin.data(dashboard, {"team": team_a.id})
        counts.append(len(statements))
        states = [edge["node"]["configState"] for edge in data["satellites"]["edges"]]
        assert len(states) == size
        assert all(state["configHash"] for state in states)
        sessions = nodes(data["team"]["clientSessions"])
        assert len(sessions) == size
        assert all(node["user"] is not None for node in sessions)
    assert counts[0] == counts[1], counts

