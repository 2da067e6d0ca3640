"""The role table of docs/graphql.md §2, row by row, over real HTTP.

Each row is tried by the four kinds of people — a global admin, an admin and a
plain member of team A, and a global user who belongs to no team — against
team A's objects, global satellites, and (for isolation) team B's objects.
Expected answers: "ok", or the error code: NOT_FOUND for what the caller may
not even see, FORBIDDEN for what it may see but not change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from app.models import McpInstallation
from app.models.enums import CommandType, SatelliteType, TokenScope
from app.runtime import Runtime
from app.services.commands.queue import enqueue_command
from app.services.common.actors import CLI_ACTOR
from tests.fixtures.graphql import ROLES, ClientFactory, GraphQLClient, as_role
from tests.fixtures.mcp import InstallFactory
from tests.fixtures.people import TeamFactory, TokenFactory, UserFactory
from tests.fixtures.satellites import SatelliteFactory

Json = dict[str, Any]


@dataclass
class World:
    """Team A (the caller's, unless global), team B (never the caller's), their objects."""

    team_a: str
    team_b: str
    global_satellite: str
    satellite_a: str
    satellite_b: str
    installation_a: McpInstallation
    installation_b: McpInstallation
    token_a: str
    token_b: str
    global_token: str
    command_a: str
    stranger: str  # a user in no team


@pytest.fixture
async def world(
    rt: Runtime, make_team: TeamFactory, make_satellite: SatelliteFactory,
    install: InstallFactory, issue_token: TokenFactory, make_user: UserFactory,
) -> World:
    team_a, team_b = await make_team(), await make_team()
    satellite_a = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=team_a.id)
    satellite_b = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=team_b.id)
    command = await enqueue_command(rt, satellite_id=satellite_a.id,
                                    command_type=CommandType.HEALTH_CHECK, actor=CLI_ACTOR)
    return World(
        team_a=team_a.id, team_b=team_b.id,
        global_satellite=(await make_satellite()).id,
        satellite_a=satellite_a.id, satellite_b=satellite_b.id,
        installation_a=await install(team_a.id), installation_b=await install(team_b.id),
        token_a=(await issue_token(scope=TokenScope.TEAM, team_id=team_a.id)).row.jti,
        token_b=(await issue_token(scope=TokenScope.TEAM, team_id=team_b.id)).row.jti,
        global_token=(await issue_token(scope=TokenScope.GLOBAL)).row.jti,
        command_a=command.id,
        stranger=(await make_user()).id,
    )


async def person(graphql_as: ClientFactory, role: str, world: World) -> GraphQLClient:
    return await as_role(graphql_as, role, world.team_a)


@pytest.fixture
async def client(role: str, world: World, graphql_as: ClientFactory) -> GraphQLClient:
    """The person of the test's parametrized `role`, logged in."""
    return await person(graphql_as, role, world)


async def outcome(client: GraphQLClient, query: str, variables: Json | None = None) -> str:
    result = await client.execute(query, variables)
    if result.get("errors"):
        code: str = result["errors"][0]["extensions"]["code"]
        return code
    return "ok"


UPDATE = """mutation($id: ID!) { updateSatellite(id: $id, labels: {edited: "yes"}) { id } }"""
ROTATE = "mutation($id: ID!) { rotateSatelliteKey(id: $id) { apiKey } }"
DELETE = "mutation($id: ID!) { deleteSatellite(id: $id) }"
ISSUE = """mutation($scope: TokenScope!, $team: ID) {
  createRegistrationToken(scope: $scope, teamId: $team) { token }
}"""
REVOKE = "mutation($id: ID!) { revokeRegistrationToken(id: $id) }"
TOKENS = "query($team: ID) { registrationTokens(teamId: $team) { id } }"
ENQUEUE = """mutation($satellite: ID!, $payload: JSON) {
  enqueueCommand(satelliteId: $satellite, commandType: RESTART, payload: $payload) { id }
}"""
CANCEL = "mutation($id: ID!) { cancelCommand(id: $id) { status } }"
ADD_MEMBER = """mutation($team: ID!, $user: ID!) {
  addTeamMember(teamId: $team, userId: $user, role: TEAM_USER) { role }
}"""
REMOVE_MEMBER = """mutation($team: ID!, $user: ID!) {
  removeTeamMember(teamId: $team, userId: $user)
}"""
AUDIT = "query($team: ID) { auditLog(teamId: $team, first: 100) { edges { node { teamId } } } }"


def by_role(global_admin: str, team_admin: str, team_user: str, global_user: str
            ) -> dict[str, str]:
    return {"global_admin": global_admin, "team_admin": team_admin, "team_user": team_user,
            "global_user": global_user}


async def check_satellite_administration(client: GraphQLClient, want: str, *, issue: Json,
                                         token: str, satellite: str) -> None:
    """Issue and revoke a registration token, edit, rotate and delete a satellite."""
    assert await outcome(client, ISSUE, issue) == want
    # Tokens are visible only to those who may manage them.
    assert await outcome(client, REVOKE, {"id": token}) == (
        "ok" if want == "ok" else "NOT_FOUND")
    for mutation in (UPDATE, ROTATE, DELETE):
        assert await outcome(client, mutation, {"id": satellite}) == want, mutation


# ---- global satellites: register tokens, edit, delete — global_admin only ----------------

GLOBAL_SATELLITE_ADMIN = by_role("ok", "FORBIDDEN", "FORBIDDEN", "FORBIDDEN")


@pytest.mark.parametrize(("role", "want"), GLOBAL_SATELLITE_ADMIN.items())
async def test_global_satellites_are_administered_by_global_admins_only(
    client: GraphQLClient, want: str, world: World,
) -> None:
    await check_satellite_administration(client, want, issue={"scope": "GLOBAL"},
                                         token=world.global_token,
                                         satellite=world.global_satellite)


# ---- team satellites: tokens, edit, delete — global_admin and the team's admins ----------

TEAM_SATELLITE_ADMIN = by_role("ok", "ok", "FORBIDDEN", "NOT_FOUND")


@pytest.mark.parametrize(("role", "want"), TEAM_SATELLITE_ADMIN.items())
async def test_team_satellites_are_administered_by_their_team_admins(
    client: GraphQLClient, want: str, world: World,
) -> None:
    await check_satellite_administration(client, want,
                                         issue={"scope": "TEAM", "team": world.team_a},
                                         token=world.token_a, satellite=world.satellite_a)


# ---- team satellites: view; global satellites: view status --------------------------------

SATELLITES = "{ satellites { edges { node { id satelliteType } } } }"


@pytest.mark.parametrize("role", ROLES)
async def test_satellites_are_visible_as_the_table_says(
    role: str, client: GraphQLClient, world: World,
) -> None:
    seen = {edge["node"]["id"] for edge in
            (await client.data(SATELLITES))["satellites"]["edges"]}

    assert world.global_satellite in seen
    assert (world.satellite_a in seen) is (role != "global_user")
    assert (world.satellite_b in seen) is (role == "global_admin")


# ---- commands: create — global_admin any; team_admin: team satellites, and global ones ----
# ---- for their own installations; nobody else ---------------------------------------------

TEAM_COMMANDS = by_role("ok", "ok", "FORBIDDEN", "NOT_FOUND")
GLOBAL_COMMANDS = by_role("ok", "ok", "FORBIDDEN", "FORBIDDEN")


@pytest.mark.parametrize("role", ROLES)
async def test_commands_are_created_as_the_table_says(
    role: str, client: GraphQLClient, world: World,
) -> None:
    own_installation = {"installation_id": world.installation_a.id}

    assert await outcome(client, ENQUEUE, {"satellite": world.satellite_a}) == (
        TEAM_COMMANDS[role])
    assert await outcome(client, ENQUEUE, {"satellite": world.global_satellite,
                                           "payload": own_installation}) == (
        GLOBAL_COMMANDS[role])
    # Another team's installation on a global satellite: only a global admin.
    assert await outcome(client, ENQUEUE, {
        "satellite": world.global_satellite,
        "payload": {"installation_id": world.installation_b.id},
    }) == by_role("ok", "NOT_FOUND", "FORBIDDEN", "FORBIDDEN")[role]
    assert await outcome(client, CANCEL, {"id": world.command_a}) == TEAM_COMMANDS[role]


# ---- users, teams: create — global_admin only ------------------------------------------------

CREATE_USER = """mutation($email: String!) {
  createUser(email: $email, password: "long enough password") { id }
}"""
CREATE_TEAM = """mutation($slug: String!) { createTeam(name: "New team", slug: $slug) { id } }"""
USERS = "{ users { totalCount } }"
SET_LIMITS = "mutation($team: ID!) { setTeamLimits(teamId: $team, maxProcesses: 3) { id } }"
GLOBAL_ADMIN_ONLY = by_role("ok", "FORBIDDEN", "FORBIDDEN", "FORBIDDEN")


@pytest.mark.parametrize(("role", "want"), GLOBAL_ADMIN_ONLY.items())
async def test_users_and_teams_are_created_by_global_admins_only(
    role: str, want: str, client: GraphQLClient, world: World,
) -> None:
    assert await outcome(client, CREATE_USER, {"email": f"new-{role}@example.com"}) == want
    assert await outcome(client, CREATE_TEAM, {"slug": f"new-{role.replace('_', '-')}"}) == want
    assert await outcome(client, USERS) == want
    # Team limits bound what a team may use: set by global admins, not by the team itself.
    assert await outcome(client, SET_LIMITS, {"team": world.team_a}) == want


# ---- team members: add/remove — global_admin and the team's admins ---------------------------

MEMBERS = "query($id: ID!) { team(id: $id) { members { user { id } } } }"


@pytest.mark.parametrize(("role", "want"), TEAM_SATELLITE_ADMIN.items())
async def test_team_members_are_managed_by_the_team_admins(
    role: str, want: str, client: GraphQLClient, world: World,
) -> None:
    member = {"team": world.team_a, "user": world.stranger}

    assert await outcome(client, ADD_MEMBER, member) == want
    team = (await client.data(MEMBERS, {"id": world.team_a}))["team"]
    if role == "global_user":
        assert team is None
    else:  # members are listed for the team's administrators only
        listed = {entry["user"]["id"] for entry in team["members"]}
        assert (world.stranger in listed) is (want == "ok")
        assert bool(listed) is (want == "ok")
    assert await outcome(client, REMOVE_MEMBER, member) == want


# ---- audit log: view — global_admin all; team_admin own team's; nobody else --------------

@pytest.mark.parametrize("role", ROLES)
async def test_the_audit_log_is_visible_as_the_table_says(
    role: str, client: GraphQLClient, world: World,
) -> None:
    teams = {edge["node"]["teamId"]
             for edge in (await client.data(AUDIT))["auditLog"]["edges"]}

    match role:
        case "global_admin":
            assert {world.team_a, world.team_b, None} <= teams
        case "team_admin":
            assert teams == {world.team_a}
        case _:
            assert teams == set()
    assert await outcome(client, AUDIT, {"team": world.team_a}) == (
        "NOT_FOUND" if role == "global_user" else "ok")


@pytest.mark.parametrize("role", ROLES)
async def test_registration_tokens_are_listed_as_the_table_says(
    role: str, client: GraphQLClient, world: World,
) -> None:
    global_ids = [token["id"] for token in (await client.data(TOKENS))["registrationTokens"]]
    assert global_ids == ([world.global_token] if role == "global_admin" else [])
    team_result = await client.execute(TOKENS, {"team": world.team_a})
    if role == "global_user":
        assert team_result["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    else:
        team_ids = [token["id"] for token in team_result["data"]["registrationTokens"]]
        assert team_ids == ([world.token_a] if role in ("global_admin", "team_admin") else [])


# ---- isolation: nothing of team B, whatever the role in team A ----------------------------

@pytest.mark.parametrize("role", ["team_admin", "team_user"])
async def test_another_teams_objects_answer_not_found(
    role: str, client: GraphQLClient, world: World,
) -> None:
    satellite = {"id": world.satellite_b}

    for query, variables in (
        (ISSUE, {"scope": "TEAM", "team": world.team_b}),
        (REVOKE, {"id": world.token_b}),
        (TOKENS, {"team": world.team_b}),
        (UPDATE, satellite), (ROTATE, satellite), (DELETE, satellite),
        (ENQUEUE, {"satellite": world.satellite_b}),
        (ADD_MEMBER, {"team": world.team_b, "user": world.stranger}),
        (REMOVE_MEMBER, {"team": world.team_b, "user": world.stranger}),
        (AUDIT, {"team": world.team_b}),
    ):
        assert await outcome(client, query, variables) == "NOT_FOUND", query
    assert (await client.data(MEMBERS, {"id": world.team_b}))["team"] is None


async def test_refusals_come_before_any_check_of_the_values(
    world: World, graphql_as: ClientFactory,
) -> None:
    """docs/graphql.md §4: authorization first, so bad values never reveal the input rules."""
    team_user = await person(graphql_as, "team_user", world)

    for query, variables in (
        (ISSUE, {"scope": "TEAM", "team": world.team_a}),
        ("mutation($team: ID!) { createRegistrationToken(scope: TEAM, teamId: $team, "
         "expiresInHours: 100000) { token } }", {"team": world.team_a}),
        ("mutation { createRegistrationToken(scope: TEAM) { token } }", None),
        ("mutation($id: ID!) { updateSatellite(id: $id, allowedCidrs: [\"nope\"]) { id } }",
         {"id": world.satellite_a}),
        ("mutation($s: ID!) { enqueueCommand(satelliteId: $s, commandType: KILL, "
         "expiresInSeconds: 0, payload: 3) { id } }", {"s": world.satellite_a}),
        ("mutation($s: ID!) { enqueueCommand(satelliteId: $s, commandType: KILL) { id } }",
         {"s": world.global_satellite}),
        ("mutation { createUser(email: \"bad\", password: \"x\") { id } }", None),
        ("{ users(first: 1000) { totalCount } }", None),
        ("mutation($team: ID!) { setTeamLimits(teamId: $team, maxCpuPercent: -1) { id } }",
         {"team": world.team_a}),
    ):
        assert await outcome(team_user, query, variables) == "FORBIDDEN", query
