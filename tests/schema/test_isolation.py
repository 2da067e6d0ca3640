"""No team ever sees another team's data (docs/graphql.md §2): for every root query field,
a member of team A gets nothing of team B, on team satellites and on a shared global
satellite alike. The last test enumerates the schema's root fields and fails when one
has no isolation check here (subscriptions: in test_subscriptions.py).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from app.models import Alert, SatelliteCommand
from app.models.enums import CommandType, GlobalRole, SatelliteType, TeamRole, TokenScope
from app.runtime import Runtime
from app.schema import schema
from app.services.alerts.webhooks import create_webhook
from app.services.commands.queue import enqueue_command
from app.services.common.actors import CLI_ACTOR
from app.services.people.principals import CLI_PRINCIPAL
from tests.fixtures.graphql import ClientFactory, GraphQLClient
from tests.fixtures.mcp import InstallFactory
from tests.fixtures.people import TeamFactory, TokenFactory
from tests.fixtures.satellites import SatelliteFactory, TestSatellite
from tests.fixtures.server import eventually

Json = dict[str, Any]


@dataclass
class Side:
    """One team's objects; `secrets` are ids that must never reach the other team."""

    team_id: str
    satellite: TestSatellite
    installation_id: str
    command_ids: list[str]
    token_id: str

    @property
    def ids(self) -> list[str]:
        return [self.team_id, self.satellite.id, self.installation_id, *self.command_ids,
                self.token_id]


@dataclass
class World:
    a: Side
    b: Side
    shared: TestSatellite  # a global satellite serving both teams
    member_a: GraphQLClient  # team_admin of A (the strongest non-global role)
    rt: Runtime

    def assert_nothing_of_b(self, result: Any) -> None:
        text = json.dumps(result)
        leaked = [value for value in self.b.ids if value in text]
        assert not leaked, f"team B's ids visible to team A: {leaked}"


async def _events(http: aiohttp.ClientSession, satellite: TestSatellite, team_id: str,
                  installation_id: str) -> None:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    body = {"events": [
        {"type": "mcp.tool.executed", "timestamp": now, "data": {
            "tool_name": "read", "server_id": installation_id, "team_id": team_id,
            "duration_ms": 5, "success": True}},
        {"type": "mcp.server.status_changed", "timestamp": now, "data": {
            "installation_id": installation_id, "team_id": team_id, "status": "online",
            "timestamp": now}},
        {"type": "mcp.client.connected", "timestamp": now, "data": {
            "session_id": f"session-{team_id}", "team_id": team_id, "transport": "http",
            "client_type": "vscode", "ip_address": "203.0.113.24"}},
        {"type": "resource.limit.exceeded", "timestamp": now, "data": {
            "team_id": team_id, "resource_type": "memory", "current_value": 600,
            "limit_value": 512}},
    ]}
    async with http.post(satellite.path("events"), json=body,
                         headers=satellite.headers) as response:
        assert response.status == 200
        assert (await response.json())["processed"] == 4


async def _side(rt: Runtime, http: aiohttp.ClientSession, shared: TestSatellite,
                make_team: TeamFactory, make_satellite: SatelliteFactory,
                install: InstallFactory, issue_token: TokenFactory) -> Side:
    team = await make_team()
    satellite = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=team.id)
    installation = await install(team.id)
    commands = [
        await enqueue_command(rt, satellite_id=target.id, command_type=CommandType.RESTART,
                              payload={"installation_id": installation.id}, actor=CLI_ACTOR,
                              team_id=team.id)
        for target in (satellite, shared)
    ]
    for target in (satellite, shared):
        await _events(http, target, team.id, installation.id)
    token = await issue_token(scope=TokenScope.TEAM, team_id=team.id)
    every_command = await SatelliteCommand.filter(team_id=team.id).values_list("id", flat=True)
    assert {c.id for c in commands} <= set(every_command)  # plus the install's `configure`s
    return Side(team.id, satellite, installation.id, [str(c) for c in every_command],
                token.row.jti)


@pytest.fixture
async def world(rt: Runtime, http: aiohttp.ClientSession, graphql_as: ClientFactory,
                make_team: TeamFactory, make_satellite: SatelliteFactory,
                install: InstallFactory, issue_token: TokenFactory) -> World:
    shared = await make_satellite(satellite_type=SatelliteType.GLOBAL)
    a = await _side(rt, http, shared, make_team, make_satellite, install, issue_token)
    b = await _side(rt, http, shared, make_team, make_satellite, install, issue_token)
    member_a = await graphql_as(teams={a.team_id: TeamRole.TEAM_ADMIN})
    return World(a, b, shared, member_a, rt)


Check = Callable[[World], Awaitable[None]]
CHECKS: dict[str, Check] = {}


def isolation(field: str) -> Callable[[Check], Check]:
    def register(check: Check) -> Check:
        CHECKS[field] = check
        return check

    return register


async def _query(world: World, document: str, variables: Json | None = None) -> Json:
    result = await world.member_a.execute(document, variables)
    world.assert_nothing_of_b(result)
    return result


@isolation("me")
async def _me(world: World) -> None:
    await _query(world, "{ me { id email } }")


TEAM_FIELDS = """id slug clientSessions(first: 100) { edges { node { sessionId teamId } } }
  resourceLimitBreaches(first: 100) { edges { node { teamId satelliteId } } }"""


@isolation("teams")
async def _teams(world: World) -> None:
    result = await _query(world, "{ teams { " + TEAM_FIELDS + " } }")
    [team] = result["data"]["teams"]
    assert team["id"] == world.a.team_id
    # its sessions and breaches on its own satellite and on the shared one
    assert len(team["clientSessions"]["edges"]) == len(team["resourceLimitBreaches"][
        "edges"]) == 2


@isolation("team")
async def _team(world: World) -> None:
    result = await _query(world, "query($id: ID!) { team(id: $id) { id } }",
                          {"id": world.b.team_id})
    assert result["data"]["team"] is None


SATELLITE_FIELDS = """id teamId processCount processes { processId teamId installationId }
  commands(first: 100) { edges { node { id teamId payload } } }
  events(first: 100) { edges { node { id teamId data } } }
  clientSessions(first: 100) { edges { node { sessionId teamId } } }
  resourceLimitBreaches(first: 100) { edges { node { teamId } } }
  configState { configHash }"""


@isolation("satellites")
async def _satellites(world: World) -> None:
    result = await _query(world, "{ satellites(first: 100) { edges { node { "
                          + SATELLITE_FIELDS + " } } } }")
    ids = {edge["node"]["id"] for edge in result["data"]["satellites"]["edges"]}
    assert ids == {world.a.satellite.id, world.shared.id}
    shared = next(edge["node"] for edge in result["data"]["satellites"]["edges"]
                  if edge["node"]["id"] == world.shared.id)
    assert {edge["node"]["teamId"] for edge in shared["events"]["edges"]} == {world.a.team_id}
    assert {edge["node"]["teamId"] for edge in shared["commands"]["edges"]} == {world.a.team_id}
    for relation in ("clientSessions", "resourceLimitBreaches"):
        assert [edge["node"]["teamId"] for edge in shared[relation]["edges"]] == [
            world.a.team_id], relation


@isolation("satellite")
async def _satellite(world: World) -> None:
    document = "query($id: ID!) { satellite(id: $id) { " + SATELLITE_FIELDS + " } }"
    assert (await _query(world, document, {"id": world.b.satellite.id}))["data"][
        "satellite"] is None
    shared = (await _query(world, document, {"id": world.shared.id}))["data"]["satellite"]
    assert shared["id"] == world.shared.id


@isolation("commands")
async def _commands(world: World) -> None:
    document = ("query($id: ID!) { commands(satelliteId: $id, first: 100) "
                "{ totalCount edges { node { id } } } }")
    assert (await world.member_a.error_code(document, {"id": world.b.satellite.id})
            ) == "NOT_FOUND"
    shared = await _query(world, document, {"id": world.shared.id})
    seen = {edge["node"]["id"] for edge in shared["data"]["commands"]["edges"]}
    assert seen
    assert seen <= set(world.a.command_ids)


@isolation("command")
async def _command(world: World) -> None:
    for command_id in world.b.command_ids:
        result = await _query(world, "query($id: ID!) { command(id: $id) { id } }",
                              {"id": command_id})
        assert result["data"]["command"] is None


@isolation("registrationTokens")
async def _registration_tokens(world: World) -> None:
    own = await _query(world, "query($t: ID) { registrationTokens(teamId: $t) { id teamId } }",
                       {"t": world.a.team_id})
    assert [token["id"] for token in own["data"]["registrationTokens"]] == [world.a.token_id]
    assert (await _query(world, "{ registrationTokens { id } }"))["data"][
        "registrationTokens"] == []
    assert await world.member_a.error_code(
        "query($t: ID) { registrationTokens(teamId: $t) { id } }", {"t": world.b.team_id}
    ) == "NOT_FOUND"


@isolation("auditLog")
async def _audit_log(world: World) -> None:
    document = ("query($t: ID) { auditLog(teamId: $t, first: 100) "
                "{ edges { node { teamId objectId details } } } }")
    result = await _query(world, document)
    teams = {edge["node"]["teamId"] for edge in result["data"]["auditLog"]["edges"]}
    assert teams == {world.a.team_id}
    assert await world.member_a.error_code(document, {"t": world.b.team_id}) == "NOT_FOUND"


@isolation("users")
async def _users(world: World) -> None:
    assert await world.member_a.error_code("{ users { edges { node { id email } } } }"
                                           ) == "FORBIDDEN"


INSTALLATION_FIELDS = """id teamId owner { id } server { id slug } configPreview
  revisions { revision } tools { toolName } logs(first: 100) { message }"""


@isolation("mcpServers")
async def _mcp_servers(world: World) -> None:
    result = await _query(world, "{ mcpServers { id slug } }")
    assert result["data"]["mcpServers"]  # the catalogue is shared by everyone


@isolation("installations")
async def _installations(world: World) -> None:
    document = ("query($teamId: ID!) { installations(teamId: $teamId) { "
                + INSTALLATION_FIELDS + " } }")
    assert await world.member_a.error_code(document, {"teamId": world.b.team_id}) == "NOT_FOUND"
    own = await _query(world, document, {"teamId": world.a.team_id})
    assert [item["id"] for item in own["data"]["installations"]] == [world.a.installation_id]


@isolation("installation")
async def _installation(world: World) -> None:
    document = "query($id: ID!) { installation(id: $id) { " + INSTALLATION_FIELDS + " } }"
    other = await _query(world, document, {"id": world.b.installation_id})
    assert other["data"]["installation"] is None
    own = await _query(world, document, {"id": world.a.installation_id})
    assert own["data"]["installation"]["teamId"] == world.a.team_id


@isolation("usage")
async def _usage(world: World) -> None:
    document = ("query($teamId: ID!) { usage(teamId: $teamId) { totalCalls "
                "byTool { toolName calls } byUser { user { id } calls } } }")
    assert await world.member_a.error_code(document, {"teamId": world.b.team_id}) == "NOT_FOUND"
    own = await _query(world, document, {"teamId": world.a.team_id})
    assert own["data"]["usage"]["totalCalls"] == 2  # its tool calls on its and the shared satellite


async def _team_alerts(team_id: str) -> list[Alert]:
    """The world's events include a resource-limit breach per team: the alert engine
    raises one alert per team from them (a moment after the batch)."""
    async def raised() -> bool:
        return await Alert.filter(team_id=team_id).exists()

    await eventually(raised)
    return await Alert.filter(team_id=team_id)


@isolation("alerts")
async def _alerts(world: World) -> None:
    await _team_alerts(world.b.team_id)
    own = (await _team_alerts(world.a.team_id))[0]
    result = await _query(world, "{ alerts { edges { node { id teamId satelliteId } } } }")
    nodes = [edge["node"] for edge in result["data"]["alerts"]["edges"]]
    assert own.id in {node["id"] for node in nodes}
    assert {node["teamId"] for node in nodes} == {world.a.team_id}
    assert await world.member_a.error_code(
        "query($t: ID) { alerts(teamId: $t) { totalCount } }", {"t": world.b.team_id}
    ) == "NOT_FOUND"


@isolation("alert")
async def _alert(world: World) -> None:
    theirs = (await _team_alerts(world.b.team_id))[0]
    result = await _query(world, "query($id: ID!) { alert(id: $id) { id } }", {"id": theirs.id})
    assert result["data"]["alert"] is None
    assert await world.member_a.error_code(
        "mutation($id: ID!) { acknowledgeAlert(id: $id) { id } }", {"id": theirs.id}
    ) == "NOT_FOUND"


@isolation("alertRules")
async def _alert_rules(world: World) -> None:
    document = "query($t: ID) { alertRules(teamId: $t) { rule enabled teamId } }"
    assert await world.member_a.error_code(document, {"t": world.b.team_id}) == "NOT_FOUND"
    own = await _query(world, document, {"t": world.a.team_id})
    assert own["data"]["alertRules"]


async def _webhook_of_b(world: World) -> str:
    created = await create_webhook(world.rt, CLI_PRINCIPAL, team_id=world.b.team_id,
                                   url="http://127.0.0.1:9/hook")
    return created.webhook.id


@isolation("webhooks")
async def _webhooks(world: World) -> None:
    theirs = await _webhook_of_b(world)
    result = await _query(world, "{ webhooks { id teamId url } }")
    assert theirs not in {item["id"] for item in result["data"]["webhooks"]}
    narrowed = await _query(world, "query($t: ID) { webhooks(teamId: $t) { id } }",
                            {"t": world.b.team_id})
    assert narrowed["data"]["webhooks"] == []


@isolation("webhookDeliveries")
async def _webhook_deliveries(world: World) -> None:
    theirs = await _webhook_of_b(world)
    for document in ("query($id: ID!) { webhookDeliveries(id: $id) { totalCount } }",
                     "mutation($id: ID!) { testWebhook(id: $id) { id } }",
                     "mutation($id: ID!) { deleteWebhook(id: $id) }"):
        assert await world.member_a.error_code(document, {"id": theirs}) == "NOT_FOUND"


def root_fields(type_name: str) -> set[str]:
    graphql_type: Any = schema._schema.get_type(type_name)  # noqa: SLF001
    return set() if graphql_type is None else set(graphql_type.fields)


@pytest.mark.parametrize("field", sorted(root_fields("Query")))
async def test_a_team_member_sees_nothing_of_another_team(world: World, field: str) -> None:
    if field not in CHECKS:
        pytest.fail(f"root field {field!r} has no isolation check in this file")
    await CHECKS[field](world)


async def test_a_global_user_sees_no_team_data(world: World, graphql_as: ClientFactory) -> None:
    outsider = await graphql_as(global_role=GlobalRole.GLOBAL_USER)
    result = await outsider.execute("{ teams { id } satellites(first: 100) { edges { node { "
                                    + SATELLITE_FIELDS + " } } } }")
    text = json.dumps(result)
    for value in [*world.a.ids, *world.b.ids]:
        if value not in (world.a.satellite.id, world.b.satellite.id):
            assert value not in text
    assert world.a.satellite.id not in text
    assert world.b.satellite.id not in text
    nodes = [edge["node"] for edge in result["data"]["satellites"]["edges"]]
    assert [node["id"] for node in nodes] == [world.shared.id]


# Subscriptions and SSE streams need a live connection; their isolation tests live
# beside their other tests. This table names them, and the tests below fail when a
# subscription or stream route has no entry or an entry names a test that is gone.
LIVE_ISOLATION_TESTS = {
    "satelliteStatusChanged": "tests/schema/test_subscriptions.py::"
                              "test_status_changes_of_another_team_are_invisible",
    "satelliteEvents": "tests/schema/test_subscriptions.py::"
                       "test_events_of_a_global_satellite_are_shown_to_their_team_only",
    "commandUpdated": "tests/schema/test_subscriptions.py::"
                      "test_command_result_reaches_command_subscribers_of_its_team_only",
    "satelliteMetrics": "tests/schema/test_subscriptions.py::"
                        "test_metrics_of_global_satellites_are_for_admins_only",
    "/api/stream/events": "tests/rest/test_streams.py::"
                          "test_event_stream_sends_the_callers_events_only",
    "/api/stream/satellites": "tests/rest/test_streams.py::"
                              "test_satellite_stream_sends_visible_status_changes_only",
    "alertChanged": "tests/services/alerts/test_offline_alerts.py::"
                    "test_silence_opens_an_offline_alert_that_the_next_heartbeat_resolves",
    "/api/stream/alerts": "tests/rest/test_streams.py::"
                          "test_alert_stream_sends_the_callers_alerts_only",
}


def _stream_routes() -> set[str]:
    from app.config import Settings
    from app.main import create_app
    from tests.fixtures.server import TEST_SECRET

    # Only the routes are read: no database is opened (the app is never started).
    app = create_app(Settings(database_url="sqlite:///nonexistent/unused.db",
                              secret_key=TEST_SECRET))
    return {resource.canonical for resource in app.router.resources()
            if resource.canonical.startswith("/api/stream/")}


@pytest.mark.parametrize("name", sorted(root_fields("Subscription") | _stream_routes()))
def test_every_subscription_and_stream_has_an_isolation_test(name: str) -> None:
    assert name in LIVE_ISOLATION_TESTS, f"{name!r} has no isolation test listed here"
    path, test_name = LIVE_ISOLATION_TESTS[name].split("::")
    source = (Path(__file__).resolve().parents[2] / path).read_text(encoding="utf-8")
    assert f"def {test_name}(" in source, f"{LIVE_ISOLATION_TESTS[name]} does not exist"
