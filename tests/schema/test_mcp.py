"""The MCP catalogue, team installations and usage over GraphQL (docs/graphql.md §2–3), over real
HTTP: who may do what, what another team sees (nothing), secrets never shown, installs
reaching the satellites at once, and a fixed query count for a team's installations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from app.config import Settings
from app.models import McpServer, Team
from app.models.enums import GlobalRole, SatelliteType, TeamRole
from app.runtime import Runtime
from app.services.common.actors import CLI_ACTOR
from app.services.common.clock import utcnow
from app.services.mcp.installations import InstallationChange, update_installation
from tests.fixtures.graphql import ClientFactory, GraphQLClient
from tests.fixtures.mcp import InstallFactory
from tests.fixtures.people import TeamFactory
from tests.fixtures.queries import counting_queries
from tests.fixtures.satellites import SatelliteFactory, TestSatellite
from tests.fixtures.server import make_settings
from tests.rest.test_config import fetch
from tests.rest.test_config_installations import poll_commands

Json = dict[str, Any]
MASK = "********"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Periodic jobs and state refreshes off: SQL counted here is the request's alone."""
    return make_settings(tmp_path, jobs_interval_seconds=3600.0, state_refresh_seconds=3600.0,
                         flush_interval_seconds=3600.0)


INSTALLATION_FIELDS = """
  id name teamId status enabled pinnedSatelliteId settings revision missingFields
  owner { id email } server { id slug transportType }
  configPreview
  revisions { revision createdAt actor { id email } }
  tools { toolName description inputSchema tokenCount }
"""
INSTALLATIONS = f"""query($teamId: ID!) {{
  installations(teamId: $teamId) {{ {INSTALLATION_FIELDS} }}
}}"""
INSTALLATION = f"""query($id: ID!) {{
  installation(id: $id) {{ {INSTALLATION_FIELDS} logs(first: 10) {{ level message }} }}
}}"""
INSTALL = """mutation($teamId: ID!, $serverId: ID!, $name: String, $args: [String!], $env: JSON,
                  $headers: JSON, $pinnedSatelliteId: ID) {
  installMcpServer(teamId: $teamId, serverId: $serverId, name: $name, args: $args, env: $env,
                   headers: $headers, pinnedSatelliteId: $pinnedSatelliteId) {
    id name teamId status owner { id email } server { slug } configPreview revisions { revision }
  }
}"""
UPDATE = """mutation($id: ID!, $name: String, $env: JSON, $headers: JSON, $settings: JSON) {
  updateInstallation(id: $id, name: $name, env: $env, headers: $headers, settings: $settings) {
    id name settings revision configPreview revisions { revision actor { email } }
  }
}"""
SET_USER_CONFIG = """mutation($id: ID!, $env: JSON) {
  setUserConfig(installationId: $id, env: $env) { id revision configPreview }
}"""
ROLLBACK = """mutation($id: ID!, $revision: Int!) {
  rollbackInstallation(id: $id, revision: $revision) { id revision configPreview }
}"""
DELETE = "mutation($id: ID!) { deleteInstallation(id: $id) }"
SERVER_FIELDS = """id slug name description transportType command args env url headers
  urlQueryParams timeoutMs teamEnvSchema { name required secret description }
  userEnvSchema { name secret } teamHeadersSchema { name secret }"""
CREATE_SERVER = f"""mutation($input: McpServerInput!) {{
  createMcpServer(input: $input) {{ {SERVER_FIELDS} }}
}}"""
UPDATE_SERVER = f"""mutation($id: ID!, $input: McpServerInput!) {{
  updateMcpServer(id: $id, input: $input) {{ {SERVER_FIELDS} }}
}}"""
USAGE = """query($teamId: ID!, $from: DateTime, $to: DateTime) {
  usage(teamId: $teamId, from: $from, to: $to) {
    from to totalCalls errorCount avgDurationMs p95DurationMs
    byTool { toolName serverSlug calls errors avgDurationMs }
    byDay { date calls errors }
    byUser { user { id email } calls }
  }
}"""


async def post_events(http: aiohttp.ClientSession, satellite: TestSatellite,
                      events: list[tuple[str, Json]]) -> None:
    stamp = utcnow().isoformat().replace("+00:00", "Z")
    body = {"events": [{"type": kind, "timestamp": stamp, "data": data} for kind, data in events]}
    async with http.post(satellite.path("events"), data=json.dumps(body),
                         headers=satellite.headers) as response:
        assert response.status == 200, await response.text()
        assert (await response.json())["failed"] == 0


def tool_events(installation_id: str, team_id: str) -> list[tuple[str, Json]]:
    return [
        ("mcp.tools.discovered", {
            "installation_id": installation_id, "team_id": team_id, "server_slug": "filesystem",
            "tool_count": 1, "tools": [{"tool_name": "read_file", "description": "Reads",
                                        "input_schema": {"type": "object"}, "token_count": 7}]}),
        ("mcp.server.logs", {"installation_id": installation_id, "team_id": team_id,
                             "logs": [{"level": "info", "message": "started"}]}),
    ]


# ---- catalogue -----------------------------------------------------------------------


async def test_anyone_logged_in_lists_the_catalogue_with_its_templates(
    graphql_as: ClientFactory, catalog: dict[str, McpServer]
) -> None:
    client = await graphql_as()

    servers = (await client.data(f"{{ mcpServers {{ {SERVER_FIELDS} }} }}"))["mcpServers"]

    by_slug = {server["slug"]: server for server in servers}
    assert by_slug["filesystem"]["transportType"] == "STDIO"
    assert by_slug["filesystem"]["env"] == {"LOG_LEVEL": "info"}
    assert {"name": "DB_PASSWORD", "required": False, "secret": True, "description": None} in (
        by_slug["filesystem"]["teamEnvSchema"])
    assert by_slug["web-search"]["headers"] == {"X-Client": "groundstation"}
    assert by_slug["web-search"]["teamHeadersSchema"] == [
        {"name": "Authorization", "secret": True}]
    assert by_slug["web-search"]["userEnvSchema"] is None


async def test_global_admins_create_and_update_catalogue_servers(
    graphql_as: ClientFactory, http: aiohttp.ClientSession, make_team: TeamFactory,
    make_satellite: SatelliteFactory, install: InstallFactory,
) -> None:
    admin = await graphql_as(global_role=GlobalRole.GLOBAL_ADMIN)
    server = {"slug": "notes", "name": "Notes", "transportType": "STDIO", "command": "notes-mcp",
              "args": ["--quiet"], "env": {"MODE": "ro"},
              "teamEnvSchema": [{"name": "NOTES_DIR", "required": True}]}

    created = (await admin.data(CREATE_SERVER, {"input": server}))["createMcpServer"]

    assert created["slug"] == "notes"
    assert created["teamEnvSchema"] == [{"name": "NOTES_DIR", "required": True, "secret": False,
                                         "description": None}]
    assert created["headers"] == {}
    # An update of a template in use reaches the satellites serving it.
    team = await make_team()
    satellite = await make_satellite()
    installation = await install(team.id, "web-search")
    await poll_commands(http, satellite)
    _, before, _ = await fetch(http, satellite)
    url = "https://mcp.example.com/v2/search"
    updated = (await admin.data(UPDATE_SERVER, {"id": installation.server_id,  # type: ignore[attr-defined]
                                                "input": {"slug": "web-search", "name": "Search",
                                                          "transportType": "HTTP", "url": url}}))
    assert updated["updateMcpServer"]["url"] == url
    assert updated["updateMcpServer"]["teamHeadersSchema"] is None  # omitted fields are reset
    status, _, body = await fetch(http, satellite, {"If-None-Match": before["ETag"]})
    assert status == 200
    assert [entry["url"] for entry in json.loads(body)["mcp_servers"].values()] == [url]
    assert [command["command_type"] for command in await poll_commands(http, satellite)] == [
        "configure"]


async def test_catalogue_changes_are_checked_after_the_callers_right(
    graphql_as: ClientFactory, catalog: dict[str, McpServer]
) -> None:
    admin = await graphql_as(global_role=GlobalRole.GLOBAL_ADMIN)
    user = await graphql_as()
    bad = {"slug": "-Bad-", "name": "", "transportType": "STDIO", "env": {"A": 1}}

    assert await user.error_code(CREATE_SERVER, {"input": bad}) == "FORBIDDEN"
    assert await user.error_code(UPDATE_SERVER, {"id": catalog["filesystem"].id,
                                                 "input": bad}) == "FORBIDDEN"
    result = await admin.execute(CREATE_SERVER, {"input": bad})
    [error] = result["errors"]
    assert error["extensions"]["code"] == "VALIDATION"
    assert {item["field"] for item in error["extensions"]["details"]} >= {
        "input.slug", "input.name", "input.command", "input.env.A"}
    taken = {"slug": "filesystem", "name": "Again", "transportType": "STDIO", "command": "x"}
    assert await admin.error_code(CREATE_SERVER, {"input": taken}) == "CONFLICT"
    assert await admin.error_code(UPDATE_SERVER, {"id": catalog["web-search"].id,
                                                  "input": taken}) == "CONFLICT"
    assert await admin.error_code(UPDATE_SERVER, {"id": "nope", "input": {
        **taken, "slug": "fresh"}}) == "NOT_FOUND"


# ---- reading installations -----------------------------------------------------------


async def test_members_read_their_teams_installations_with_owner_revisions_tools_and_logs(
    team_a: Team, admin_a: GraphQLClient, member_a: GraphQLClient, http: aiohttp.ClientSession,
    make_satellite: SatelliteFactory, install: InstallFactory, rt: Runtime,
) -> None:
    assert admin_a.user is not None
    installation = await install(team_a.id, owner_id=admin_a.user.id)
    await update_installation(rt, installation.id, InstallationChange(
        env={"ROOT_DIR": "/srv/other"}), actor=CLI_ACTOR)
    await post_events(http, await make_satellite(), tool_events(installation.id, team_a.id))

    [listed] = (await member_a.data(INSTALLATIONS, {"teamId": team_a.id}))["installations"]
    shown = (await member_a.data(INSTALLATION, {"id": installation.id}))["installation"]

    assert listed == {key: value for key, value in shown.items() if key != "logs"}
    assert shown["teamId"] == team_a.id
    assert shown["owner"] == {"id": admin_a.user.id, "email": admin_a.user.email}
    assert shown["server"] == {"id": installation.server_id,  # type: ignore[attr-defined]
                               "slug": "filesystem", "transportType": "STDIO"}
    assert [(r["revision"], r["actor"]) for r in shown["revisions"]] == [(2, None), (1, None)]
    assert shown["tools"] == [{"toolName": "read_file", "description": "Reads",
                               "inputSchema": {"type": "object"}, "tokenCount": 7}]
    assert shown["logs"] == [{"level": "info", "message": "started"}]
    preview = shown["configPreview"]
    assert preview["installation_id"] == installation.id
    assert preview["command"] == "npx"
    assert preview["env"] == {"LOG_LEVEL": "info", "ROOT_DIR": "/srv/other"}
    assert shown["missingFields"] == []


async def test_another_teams_member_sees_nothing_and_changes_nothing(
    graphql_as: ClientFactory, make_team: TeamFactory, install: InstallFactory,
    catalog: dict[str, McpServer],
) -> None:
    team, other_team = await make_team(), await make_team()
    installation = await install(team.id)
    outsider = await graphql_as(teams={other_team.id: TeamRole.TEAM_ADMIN})
    loner = await graphql_as()  # a global_user in no team
    ids = {"id": installation.id}

    for client in (outsider, loner):
        assert await client.error_code(INSTALLATIONS, {"teamId": team.id}) == "NOT_FOUND"
        assert (await client.data(INSTALLATION, ids))["installation"] is None
        assert await client.error_code(USAGE, {"teamId": team.id}) == "NOT_FOUND"
        assert await client.error_code(UPDATE, {**ids, "name": "mine"}) == "NOT_FOUND"
        assert await client.error_code(SET_USER_CONFIG, {**ids, "env": {}}) == "NOT_FOUND"
        assert await client.error_code(ROLLBACK, {**ids, "revision": 1}) == "NOT_FOUND"
        assert await client.error_code(DELETE, ids) == "NOT_FOUND"
        assert await client.error_code(INSTALL, {
            "teamId": team.id, "serverId": catalog["web-search"].id}) == "NOT_FOUND"
    assert (await outsider.data(INSTALLATIONS, {"teamId": other_team.id}))["installations"] == []


# ---- secrets -------------------------------------------------------------------------


async def test_secrets_are_masked_in_every_answer(
    team_a: Team, admin_a: GraphQLClient, catalog: dict[str, McpServer],
) -> None:
    team_secret, user_secret = "team-pw-3141", "user-token-2718"

    installed = await admin_a.execute(INSTALL, {
        "teamId": team_a.id, "serverId": catalog["filesystem"].id,
        "env": {"ROOT_DIR": "/d", "DB_PASSWORD": team_secret}})
    installation_id = installed["data"]["installMcpServer"]["id"]
    answers = [
        installed,
        await admin_a.execute(SET_USER_CONFIG, {"id": installation_id,
                                                "env": {"API_TOKEN": user_secret}}),
        await admin_a.execute(UPDATE, {"id": installation_id, "name": "renamed"}),
        await admin_a.execute(INSTALLATIONS, {"teamId": team_a.id}),
        await admin_a.execute(INSTALLATION, {"id": installation_id}),
        await admin_a.execute(ROLLBACK, {"id": installation_id, "revision": 2}),
    ]
    web = await admin_a.data(INSTALL, {"teamId": team_a.id,
                                       "serverId": catalog["web-search"].id,
                                       "headers": {"Authorization": "Bearer sekrit-999"}})

    for answer in answers:
        assert "errors" not in answer, answer
        text = json.dumps(answer)
        assert team_secret not in text
        assert user_secret not in text
        assert "enc:" not in text
    preview = answers[4]["data"]["installation"]["configPreview"]
    assert preview["env"]["DB_PASSWORD"] == preview["env"]["API_TOKEN"] == MASK
    assert preview["secret_metadata"] == {"env": ["API_TOKEN", "DB_PASSWORD"]}
    assert web["installMcpServer"]["configPreview"]["headers"]["Authorization"] == MASK
    assert "sekrit" not in json.dumps(web)


# ---- installing and changing -----------------------------------------------------------


async def test_an_install_changes_the_satellites_config_at_once_with_one_configure(
    graphql_as: ClientFactory, http: aiohttp.ClientSession, make_team: TeamFactory,
    make_satellite: SatelliteFactory, catalog: dict[str, McpServer],
) -> None:
    team, other_team = await make_team(), await make_team()
    own = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=team.id)
    other = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=other_team.id)
    etags = {sat.id: (await fetch(http, sat))[1]["ETag"] for sat in (own, other)}
    admin = await graphql_as(teams={team.id: TeamRole.TEAM_ADMIN})
    assert admin.user is not None

    data = await admin.data(INSTALL, {"teamId": team.id, "serverId": catalog["filesystem"].id,
                                      "name": "Files", "env": {"ROOT_DIR": "/srv"}})

    installed = data["installMcpServer"]
    assert (installed["name"], installed["teamId"], installed["server"]) == (
        "Files", team.id, {"slug": "filesystem"})
    assert installed["owner"] == {"id": admin.user.id, "email": admin.user.email}
    assert installed["revisions"] == [{"revision": 1}]
    status, headers, body = await fetch(http, own, {"If-None-Match": etags[own.id]})
    assert status == 200
    assert headers["ETag"] != etags[own.id]
    assert [entry["installation_id"] for entry in json.loads(body)["mcp_servers"].values()] == [
        installed["id"]]
    [command] = await poll_commands(http, own)
    assert (command["command_type"], command["priority"]) == ("configure", "immediate")
    assert command["payload"]["installation_id"] == installed["id"]
    assert (await fetch(http, other, {"If-None-Match": etags[other.id]}))[0] == 304


async def test_a_pin_names_a_satellite_the_installer_can_see(
    graphql_as: ClientFactory, make_team: TeamFactory, make_satellite: SatelliteFactory,
    catalog: dict[str, McpServer],
) -> None:
    team, other_team = await make_team(), await make_team()
    own = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=team.id)
    foreign = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=other_team.id)
    admin = await graphql_as(teams={team.id: TeamRole.TEAM_ADMIN})
    install = {"teamId": team.id, "serverId": catalog["web-search"].id}

    assert await admin.error_code(INSTALL, {**install, "pinnedSatelliteId": foreign.id}) == (
        "NOT_FOUND")
    pinned = await admin.data(
        """mutation($teamId: ID!, $serverId: ID!, $pin: ID) {
          installMcpServer(teamId: $teamId, serverId: $serverId, pinnedSatelliteId: $pin) {
            pinnedSatelliteId } }""", {**install, "pin": own.id})
    assert pinned["installMcpServer"]["pinnedSatelliteId"] == own.id


async def test_team_admins_update_roll_back_and_delete_installations(
    team_a: Team, admin_a: GraphQLClient, install: InstallFactory,
) -> None:
    installation = await install(team_a.id)
    ids = {"id": installation.id}

    updated = (await admin_a.data(UPDATE, {**ids, "name": "Docs", "env": {"ROOT_DIR": "/docs"},
                                         "settings": {"idle_timeout": 60}}))["updateInstallation"]
    assert (updated["name"], updated["settings"], updated["revision"]) == (
        "Docs", {"idle_timeout": 60}, 2)
    assert updated["configPreview"]["env"]["ROOT_DIR"] == "/docs"
    assert updated["revisions"][0]["actor"] == {"email": admin_a.user.email}  # type: ignore[union-attr]

    rolled = (await admin_a.data(ROLLBACK, {**ids, "revision": 1}))["rollbackInstallation"]
    assert rolled["revision"] == 3
    assert rolled["configPreview"]["env"]["ROOT_DIR"] == "/srv/data"
    assert await admin_a.error_code(ROLLBACK, {**ids, "revision": 99}) == "NOT_FOUND"

    assert (await admin_a.data(DELETE, ids))["deleteInstallation"] is True
    assert (await admin_a.data(INSTALLATION, ids))["installation"] is None
    assert await admin_a.error_code(DELETE, ids) == "NOT_FOUND"


async def test_team_users_set_their_own_config_but_change_nothing_else(
    team_a: Team, member_a: GraphQLClient, install: InstallFactory, catalog: dict[str, McpServer],
) -> None:
    assert member_a.user is not None
    installation = await install(team_a.id, owner_id=member_a.user.id)
    ids = {"id": installation.id}

    saved = (await member_a.data(SET_USER_CONFIG, {**ids, "env": {"LOG_LEVEL": "debug"}}))
    assert saved["setUserConfig"]["configPreview"]["env"]["LOG_LEVEL"] == "debug"
    assert saved["setUserConfig"]["revision"] == 2

    assert await member_a.error_code(UPDATE, {**ids, "name": "x"}) == "FORBIDDEN"
    assert await member_a.error_code(ROLLBACK, {**ids, "revision": 1}) == "FORBIDDEN"
    assert await member_a.error_code(DELETE, ids) == "FORBIDDEN"
    assert await member_a.error_code(INSTALL, {
        "teamId": team_a.id, "serverId": catalog["web-search"].id}) == "FORBIDDEN"


async def test_json_arguments_must_be_objects_of_strings_checked_after_the_right(
    team_a: Team, admin_a: GraphQLClient, member_a: GraphQLClient, install: InstallFactory,
    catalog: dict[str, McpServer],
) -> None:
    installation = await install(team_a.id)
    ids = {"id": installation.id}

    for env in (["ROOT_DIR"], {"ROOT_DIR": 5}, "ROOT_DIR=/x", {"": "x"}):
        assert await admin_a.error_code(UPDATE, {**ids, "env": env}) == "VALIDATION", env
        assert await member_a.error_code(UPDATE, {**ids, "env": env}) == "FORBIDDEN", env
        assert await member_a.error_code(SET_USER_CONFIG, {**ids, "env": env}) == "VALIDATION"
        assert await admin_a.error_code(INSTALL, {
            "teamId": team_a.id, "serverId": catalog["filesystem"].id, "env": env}) == "VALIDATION"
    assert await admin_a.error_code(UPDATE, {**ids, "headers": [1]}) == "VALIDATION"
    assert await admin_a.error_code(UPDATE, {**ids, "settings": [1]}) == "VALIDATION"
    assert await admin_a.error_code(INSTALL, {"teamId": team_a.id,
                                              "serverId": "missing"}) == "NOT_FOUND"


# ---- cost ------------------------------------------------------------------------------


async def test_a_teams_installations_cost_a_fixed_number_of_queries(
    team_a: Team, member_a: GraphQLClient, graphql_as: ClientFactory, http: aiohttp.ClientSession,
    make_satellite: SatelliteFactory, install: InstallFactory, rt: Runtime,
) -> None:
    satellite = await make_satellite()
    owners = [member_a.user, (await graphql_as(teams={team_a.id: TeamRole.TEAM_USER})).user, None]
    counts: list[int] = []
    built = 0
    for size in (2, 12):
        for index in range(built, size):
            owner = owners[index % len(owners)]
            installation = await install(team_a.id,
                                         "web-search" if index % 2 else "filesystem",
                                         owner_id=None if owner is None else owner.id,
                                         name=f"i-{index:02d}")
            await update_installation(rt, installation.id, InstallationChange(
                settings={"n": index}), actor=CLI_ACTOR)
            await post_events(http, satellite, tool_events(installation.id, team_a.id)[:1])
        built = size
        await member_a.data("{ me { id } }")  # the session is verified (and cached) first
        with counting_queries() as statements:
            data = await member_a.data(INSTALLATIONS, {"teamId": team_a.id})
        counts.append(len(statements))

        listed = data["installations"]
        assert len(listed) == size
        assert all(len(item["revisions"]) == 2 and len(item["tools"]) == 1 for item in listed)
        assert all(item["configPreview"] is not None for item in listed)

    assert counts[0] == counts[1], counts


# ---- usage -----------------------------------------------------------------------------


async def test_members_read_their_teams_usage(
    team_a: Team, member_a: GraphQLClient, graphql_as: ClientFactory, http: aiohttp.ClientSession,
    make_satellite: SatelliteFactory, install: InstallFactory,
) -> None:
    admin = await graphql_as(global_role=GlobalRole.GLOBAL_ADMIN)
    installation = await install(team_a.id)
    await post_events(http, await make_satellite(), [
        ("mcp.tool.executed", {"tool_name": "read_file", "server_id": installation.id,
                               "team_id": team_a.id, "server_slug": "filesystem",
                               "duration_ms": duration, "success": duration < 40})
        for duration in (10, 20, 40)
    ])

    usage = (await member_a.data(USAGE, {"teamId": team_a.id}))["usage"]

    assert (usage["totalCalls"], usage["errorCount"]) == (3, 1)
    assert usage["avgDurationMs"] == pytest.approx(70 / 3)
    assert usage["p95DurationMs"] == 40
    assert usage["byTool"] == [{"toolName": "read_file", "serverSlug": "filesystem",
                                "calls": 3, "errors": 1, "avgDurationMs": pytest.approx(70 / 3)}]
    assert [(day["calls"], day["errors"]) for day in usage["byDay"]] == [(3, 1)]
    assert usage["byUser"] == []  # satellites report no user for these calls
    assert (await admin.data(USAGE, {"teamId": team_a.id}))["usage"]["totalCalls"] == 3
    assert await member_a.error_code(USAGE, {"teamId": team_a.id,
                                             "from": "2026-01-02T00:00:00Z",
                                             "to": "2026-01-01T00:00:00Z"}) == "VALIDATION"
