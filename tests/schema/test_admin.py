"""People, teams, tokens, satellite administration and commands over GraphQL (docs/graphql.md §3).

Every test talks to a running server over HTTP as a logged-in person; objects
are built through the services.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from app.models import AuditEntry, SatelliteCommand
from app.models import Satellite as SatelliteRow
from app.models.enums import GlobalRole, SatelliteType, TeamRole, TokenScope
from app.runtime import Runtime
from tests.fixtures.graphql import LOGIN, ClientFactory, GraphQLClient
from tests.fixtures.mcp import InstallFactory
from tests.fixtures.people import PASSWORD, TeamFactory, UserFactory
from tests.fixtures.satellites import SatelliteFactory

Json = dict[str, Any]

CREATE_USER = """mutation($email: String!, $password: String!, $role: GlobalRole) {
  createUser(email: $email, password: $password, globalRole: $role) { id email globalRole }
}"""
CREATE_TEAM = """mutation($name: String!, $slug: String!) {
  createTeam(name: $name, slug: $slug) { id name slug }
}"""
ADD_MEMBER = """mutation($team: ID!, $user: ID!, $role: TeamRole!) {
  addTeamMember(teamId: $team, userId: $user, role: $role) { teamId user { id email } role }
}"""
REMOVE_MEMBER = """mutation($team: ID!, $user: ID!) {
  removeTeamMember(teamId: $team, userId: $user)
}"""
MEMBERS = """query($id: ID!) { team(id: $id) { members { user { email } role } } }"""
CREATE_TOKEN = """mutation($scope: TokenScope!, $team: ID, $hours: Int, $name: String) {
  createRegistrationToken(scope: $scope, teamId: $team, expiresInHours: $hours,
                          satelliteName: $name) {
    token registrationToken { id scope teamId satelliteName expiresAt usedAt revokedAt }
  }
}"""
TOKENS = """query($team: ID) {
  registrationTokens(teamId: $team) { id scope teamId satelliteName usedAt revokedAt }
}"""
REVOKE_TOKEN = "mutation($id: ID!) { revokeRegistrationToken(id: $id) }"
UPDATE_SATELLITE = """mutation($id: ID!, $name: String, $status: SatelliteStatus,
                               $overrides: JSON, $cidrs: [String!], $labels: JSON) {
  updateSatellite(id: $id, name: $name, status: $status, configOverrides: $overrides,
                  allowedCidrs: $cidrs, labels: $labels) { id name status labels }
}"""
ROTATE = "mutation($id: ID!) { rotateSatelliteKey(id: $id) { apiKey satellite { id } } }"
DELETE = "mutation($id: ID!) { deleteSatellite(id: $id) }"
SATELLITE = "query($id: ID!) { satellite(id: $id) { id name status } }"
SET_LIMITS = """mutation($team: ID!, $processes: Int, $memory: Int, $cpu: Float) {
  setTeamLimits(teamId: $team, maxProcesses: $processes, maxMemoryPerProcessMb: $memory,
                maxCpuPercent: $cpu) { maxProcesses maxMemoryPerProcessMb maxCpuPercent }
}"""
ENQUEUE = """mutation($satellite: ID!, $type: CommandType!, $priority: CommandPriority,
                      $payload: JSON, $expires: Int) {
  enqueueCommand(satelliteId: $satellite, commandType: $type, priority: $priority,
                 payload: $payload, expiresInSeconds: $expires) {
    id satelliteId teamId commandType priority status payload
  }
}"""
CANCEL = "mutation($id: ID!) { cancelCommand(id: $id) { id status } }"
AUDIT = """query($team: ID, $first: Int, $after: String) {
  auditLog(teamId: $team, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { id at action objectType objectId teamId details
                   actor { type userId satelliteId email } } }
  }
}"""
USERS = """query($first: Int, $after: String) {
  users(first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } edges { node { id email globalRole } }
  }
}"""


async def test_a_global_admin_creates_users_and_teams_and_lists_users(
    graphql_as: ClientFactory,
) -> None:
    admin = await graphql_as(global_role=GlobalRole.GLOBAL_ADMIN)

    created = (await admin.data(CREATE_USER, {"email": " New.Person@Example.com ",
                                              "password": PASSWORD}))["createUser"]
    team = (await admin.data(CREATE_TEAM, {"name": "Ops", "slug": "ops"}))["createTeam"]

    assert created["email"] == "new.person@example.com"
    assert created["globalRole"] == "GLOBAL_USER"
    assert team["slug"] == "ops"
    page = (await admin.data(USERS, {"first": 1}))["users"]
    assert page["totalCount"] == 2
    assert page["pageInfo"]["hasNextPage"] is True
    rest = (await admin.data(USERS, {"after": page["pageInfo"]["endCursor"]}))["users"]
    emails = [edge["node"]["email"] for edge in page["edges"] + rest["edges"]]
    assert emails == sorted(emails)
    assert created["email"] in emails


async def test_user_and_team_creation_report_conflicts_and_bad_values(
    graphql_as: ClientFactory,
) -> None:
    admin = await graphql_as(global_role=GlobalRole.GLOBAL_ADMIN)
    assert admin.user is not None

    assert await admin.error_code(CREATE_USER, {"email": admin.user.email.upper(),
                                                "password": PASSWORD}) == "CONFLICT"
    assert await admin.error_code(CREATE_USER, {"email": "not-an-email",
                                                "password": PASSWORD}) == "VALIDATION"
    assert await admin.error_code(CREATE_USER, {"email": "short@example.com",
                                                "password": "short"}) == "VALIDATION"
    await admin.data(CREATE_TEAM, {"name": "One", "slug": "one"})
    assert await admin.error_code(CREATE_TEAM, {"name": "Two", "slug": "one"}) == "CONFLICT"
    assert await admin.error_code(CREATE_TEAM, {"name": "Bad", "slug": "-X"}) == "VALIDATION"


async def test_created_users_can_log_in_with_their_role(
    graphql_as: ClientFactory, anonymous: GraphQLClient,
) -> None:
    admin = await graphql_as(global_role=GlobalRole.GLOBAL_ADMIN)
    await admin.data(CREATE_USER, {"email": "boss@example.com", "password": PASSWORD,
                                   "role": "GLOBAL_ADMIN"})

    login = await anonymous.data(LOGIN, {"email": "boss@example.com", "password": PASSWORD})

    assert login["login"]["user"]["globalRole"] == "GLOBAL_ADMIN"


async def test_a_team_admin_adds_changes_and_removes_members(
    graphql_as: ClientFactory, make_team: TeamFactory, make_user: UserFactory,
) -> None:
    team = await make_team()
    team_admin = await graphql_as(teams={team.id: TeamRole.TEAM_ADMIN})
    newcomer = await make_user()

    added = (await team_admin.data(ADD_MEMBER, {"team": team.id, "user": newcomer.id,
                                                "role": "TEAM_USER"}))["addTeamMember"]
    assert added == {"teamId": team.id, "user": {"id": newcomer.id, "email": newcomer.email},
                     "role": "TEAM_USER"}
    promoted = await team_admin.data(ADD_MEMBER, {"team": team.id, "user": newcomer.id,
                                                  "role": "TEAM_ADMIN"})
    assert promoted["addTeamMember"]["role"] == "TEAM_ADMIN"
    members = (await team_admin.data(MEMBERS, {"id": team.id}))["team"]["members"]
    assert {"user": {"email": newcomer.email}, "role": "TEAM_ADMIN"} in members
    assert len(members) == 2

    removed = await team_admin.data(REMOVE_MEMBER, {"team": team.id, "user": newcomer.id})
    again = await team_admin.data(REMOVE_MEMBER, {"team": team.id, "user": newcomer.id})

    assert removed["removeTeamMember"] is True
    assert again["removeTeamMember"] is False
    assert len((await team_admin.data(MEMBERS, {"id": team.id}))["team"]["members"]) == 1
    assert await team_admin.error_code(ADD_MEMBER, {"team": team.id, "user": "no-such-user",
                                                    "role": "TEAM_USER"}) == "NOT_FOUND"


async def test_team_members_are_listed_for_admins_only(
    graphql_as: ClientFactory, make_team: TeamFactory,
) -> None:
    team = await make_team()
    member = await graphql_as(teams={team.id: TeamRole.TEAM_USER})
    admin = await graphql_as(global_role=GlobalRole.GLOBAL_ADMIN)

    assert member.user is not None

    assert (await member.data(MEMBERS, {"id": team.id}))["team"]["members"] == []
    listed = (await admin.data(MEMBERS, {"id": team.id}))["team"]["members"]
    assert listed == [{"user": {"email": member.user.email}, "role": "TEAM_USER"}]


async def test_a_team_token_registers_a_team_satellite_once_and_is_listed(
    graphql_as: ClientFactory, make_team: TeamFactory, http: aiohttp.ClientSession,
) -> None:
    team = await make_team()
    team_admin = await graphql_as(teams={team.id: TeamRole.TEAM_ADMIN})

    issued = (await team_admin.data(CREATE_TOKEN, {"scope": "TEAM", "team": team.id,
                                                   "hours": 2}))["createRegistrationToken"]
    record = issued["registrationToken"]
    assert record["scope"] == "TEAM"
    assert record["teamId"] == team.id
    assert record["usedAt"] is None
    assert issued["token"].startswith("deploystack_satellite_team_")

    async with http.post("/api/satellites/register", json={"name": "team-sat-from-graphql"},
                         headers={"Authorization": f"Bearer {issued['token']}"}) as response:
        assert response.status == 200, await response.text()

    listed = (await team_admin.data(TOKENS, {"team": team.id}))["registrationTokens"]
    assert [token["id"] for token in listed] == [record["id"]]
    assert listed[0]["usedAt"] is not None
    assert await team_admin.error_code(REVOKE_TOKEN, {"id": record["id"]}) == "CONFLICT"


CREATE_TOKENS = """mutation($scope: TokenScope!, $team: ID, $count: Int!) {
  createRegistrationTokens(scope: $scope, teamId: $team, count: $count) {
    token registrationToken { id scope teamId }
  }
}"""


async def test_team_admins_issue_tokens_in_bulk_for_their_own_team_only(
    graphql_as: ClientFactory, make_team: TeamFactory, http: aiohttp.ClientSession,
) -> None:
    team, other = await make_team(), await make_team()
    team_admin = await graphql_as(teams={team.id: TeamRole.TEAM_ADMIN})
    issued = (await team_admin.data(CREATE_TOKENS, {"scope": "TEAM", "team": team.id,
                                                    "count": 5}))["createRegistrationTokens"]
    assert len({token["token"] for token in issued}) == 5
    assert {token["registrationToken"]["teamId"] for token in issued} == {team.id}
    async with http.post("/api/satellites/register", json={"name": "bulk-team-satellite"},
                         headers={"Authorization": f"Bearer {issued[4]['token']}"}) as response:
        assert response.status == 200, await response.text()
    listed = (await team_admin.data(TOKENS, {"team": team.id}))["registrationTokens"]
    assert len(listed) == 5
    assert await team_admin.error_code(
        CREATE_TOKENS, {"scope": "TEAM", "team": other.id, "count": 2}) in ("FORBIDDEN",
                                                                           "NOT_FOUND")
    assert await team_admin.error_code(
        CREATE_TOKENS, {"scope": "GLOBAL", "count": 2}) == "FORBIDDEN"
    assert await team_admin.error_code(
        CREATE_TOKENS, {"scope": "TEAM", "team": team.id, "count": 10_001}) == "VALIDATION"
    assert len((await team_admin.data(TOKENS, {"team": team.id}))["registrationTokens"]) == 5


async def test_revoking_a_token_is_idempotent_and_lists_it_revoked(
    graphql_as: ClientFactory,
) -> None:
    admin = await graphql_as(global_role=GlobalRole.GLOBAL_ADMIN)
    issued = (await admin.data(CREATE_TOKEN, {"scope": "GLOBAL",
                                              "name": "global-sat-0001"}))
    token_id = issued["createRegistrationToken"]["registrationToken"]["id"]

    assert (await admin.data(REVOKE_TOKEN, {"id": token_id}))["revokeRegistrationToken"]
    assert (await admin.data(REVOKE_TOKEN, {"id": token_id}))["revokeRegistrationToken"]

    listed = (await admin.data(TOKENS))["registrationTokens"]
    assert listed[0]["id"] == token_id
    assert listed[0]["revokedAt"] is not None
    assert listed[0]["satelliteName"] == "global-sat-0001"
    assert await admin.error_code(REVOKE_TOKEN, {"id": "no-such-token"}) == "NOT_FOUND"


async def test_token_values_are_checked_after_the_right_to_issue(
    graphql_as: ClientFactory, make_team: TeamFactory,
) -> None:
    team = await make_team()
    team_admin = await graphql_as(teams={team.id: TeamRole.TEAM_ADMIN})

    assert await team_admin.error_code(CREATE_TOKEN, {"scope": "TEAM", "team": team.id,
                                                      "hours": 73}) == "VALIDATION"
    assert await team_admin.error_code(CREATE_TOKEN, {"scope": "TEAM"}) == "VALIDATION"
    assert await team_admin.error_code(CREATE_TOKEN, {"scope": "TEAM", "team": team.id,
                                                      "name": "Bad Name!"}) == "VALIDATION"
    # A global token is refused before its (invalid) lifetime is looked at.
    assert await team_admin.error_code(CREATE_TOKEN, {"scope": "GLOBAL",
                                                      "hours": 999}) == "FORBIDDEN"


async def test_updating_a_satellite_changes_every_given_field(
    graphql_as: ClientFactory, make_satellite: SatelliteFactory, rt: Runtime,
) -> None:
    admin = await graphql_as(global_role=GlobalRole.GLOBAL_ADMIN)
    satellite = await make_satellite()

    updated = (await admin.data(UPDATE_SATELLITE, {
        "id": satellite.id, "name": "renamed-satellite", "status": "MAINTENANCE",
        "overrides": {"polling": {"max_interval": 120}},
        "cidrs": ["10.1.2.3/8", "2001:db8::/32", "10.0.0.0/8"],
        "labels": {"region": "eu-west", "rack": "r12"},
    }))["updateSatellite"]

    assert updated == {"id": satellite.id, "name": "renamed-satellite",
                       "status": "MAINTENANCE", "labels": {"region": "eu-west", "rack": "r12"}}
    row = await SatelliteRow.get(id=satellite.id)
    assert row.allowed_cidrs == ["10.0.0.0/8", "2001:db8::/32"]
    assert row.config_overrides == {"polling": {"max_interval": 120}}
    state = rt.fleet.get(satellite.id)
    assert state is not None
    assert state.name == "renamed-satellite"
    assert len(state.allowed_networks) == 2
    assert await AuditEntry.filter(action="satellite.updated", object_id=satellite.id).exists()


async def test_a_refused_satellite_edit_changes_nothing(
    graphql_as: ClientFactory, make_satellite: SatelliteFactory,
) -> None:
    admin = await graphql_as(global_role=GlobalRole.GLOBAL_ADMIN)
    satellite = await make_satellite()
    other = await make_satellite()

    for variables, code in (
        ({"name": "new-name-0001", "cidrs": ["10.0.0.0/33"]}, "VALIDATION"),
        ({"name": "new-name-0001", "labels": {"key": 1}}, "VALIDATION"),
        ({"name": "new-name-0001", "labels": ["not", "an", "object"]}, "VALIDATION"),
        ({"name": "new-name-0001", "labels": {f"k{i}": "v" for i in range(33)}}, "VALIDATION"),
        ({"name": "new-name-0001", "overrides": [1]}, "VALIDATION"),
        ({"name": "UPPER CASE"}, "VALIDATION"),
        ({"name": other.name, "status": "DISABLED"}, "CONFLICT"),
    ):
        result = await admin.execute(UPDATE_SATELLITE, {"id": satellite.id, **variables})
        assert result["errors"][0]["extensions"]["code"] == code, variables

    row = await SatelliteRow.get(id=satellite.id)
    assert (row.name, row.labels, row.allowed_cidrs, row.status.value) == (
        satellite.name, {}, [], "active")


async def test_rotating_a_key_returns_it_once_and_refuses_the_old_one(
    graphql_as: ClientFactory, make_satellite: SatelliteFactory, http: aiohttp.ClientSession,
) -> None:
    admin = await graphql_as(global_role=GlobalRole.GLOBAL_ADMIN)
    satellite = await make_satellite()

    rotated = (await admin.data(ROTATE, {"id": satellite.id}))["rotateSatelliteKey"]

    assert rotated["satellite"] == {"id": satellite.id}
    config = satellite.path("config")
    async with http.get(config, headers=satellite.headers) as response:
        assert response.status == 401
    async with http.get(config, headers={"Authorization": f"Bearer {rotated['apiKey']}"}
                        ) as response:
        assert response.status == 200


async def test_deleting_a_satellite_hides_it_and_refuses_its_key(
    graphql_as: ClientFactory, make_satellite: SatelliteFactory, http: aiohttp.ClientSession,
) -> None:
    admin = await graphql_as(global_role=GlobalRole.GLOBAL_ADMIN)
    satellite = await make_satellite()

    assert (await admin.data(DELETE, {"id": satellite.id}))["deleteSatellite"] is True

    assert (await admin.data(SATELLITE, {"id": satellite.id}))["satellite"] is None
    assert await admin.error_code(DELETE, {"id": satellite.id}) == "NOT_FOUND"
    async with http.get(satellite.path("config"), headers=satellite.headers) as response:
        assert response.status == 401


async def test_team_limits_change_only_the_given_ones_and_null_clears(
    graphql_as: ClientFactory, make_team: TeamFactory,
) -> None:
    admin = await graphql_as(global_role=GlobalRole.GLOBAL_ADMIN)
    team = await make_team()

    first = await admin.data(SET_LIMITS, {"team": team.id, "processes": 5, "cpu": 50.0})
    assert first["setTeamLimits"] == {"maxProcesses": 5, "maxMemoryPerProcessMb": None,
                                      "maxCpuPercent": 50.0}
    only_memory = await admin.data(
        "mutation($team: ID!) { setTeamLimits(teamId: $team, maxMemoryPerProcessMb: 512) "
        "{ maxProcesses maxMemoryPerProcessMb maxCpuPercent } }", {"team": team.id})
    assert only_memory["setTeamLimits"] == {"maxProcesses": 5, "maxMemoryPerProcessMb": 512,
                                            "maxCpuPercent": 50.0}
    cleared = await admin.data(
        "mutation($team: ID!) { setTeamLimits(teamId: $team, maxProcesses: null) "
        "{ maxProcesses maxMemoryPerProcessMb } }", {"team": team.id})
    assert cleared["setTeamLimits"] == {"maxProcesses": None, "maxMemoryPerProcessMb": 512}
    assert await admin.error_code(SET_LIMITS, {"team": team.id, "cpu": 150.0}) == "VALIDATION"
    assert await admin.error_code(SET_LIMITS, {"team": "no-such-team"}) == "NOT_FOUND"


async def test_a_team_admin_commands_a_global_satellite_for_its_own_installation(
    graphql_as: ClientFactory, make_team: TeamFactory, make_satellite: SatelliteFactory,
    install: InstallFactory,
) -> None:
    team, other_team = await make_team(slug="alpha"), await make_team()
    team_admin = await graphql_as(teams={team.id: TeamRole.TEAM_ADMIN})
    satellite = await make_satellite()
    installation = await install(team.id)
    foreign = await install(other_team.id)

    command = (await team_admin.data(ENQUEUE, {
        "satellite": satellite.id, "type": "RESTART", "priority": "HIGH",
        "payload": {"installation_id": installation.id, "reason": "stuck"},
    }))["enqueueCommand"]

    assert command["teamId"] == team.id
    assert command["priority"] == "HIGH"
    assert command["payload"] == {
        "installation_id": installation.id, "reason": "stuck", "team_id": team.id,
        "server_name": f"filesystem-alpha-{installation.id}",
    }
    row = await SatelliteCommand.get(id=command["id"])
    assert row.team_id == team.id  # type: ignore[attr-defined]
    for payload, code in (
        ({"installation_id": installation.id, "team_id": other_team.id}, "VALIDATION"),
        ({"installation_id": installation.id, "server_name": "something-else"}, "VALIDATION"),
        ({"reason": "no installation named"}, "VALIDATION"),
        (None, "VALIDATION"),
        ({"installation_id": foreign.id}, "NOT_FOUND"),
        ({"installation_id": 12}, "VALIDATION"),
    ):
        result = await team_admin.execute(ENQUEUE, {"satellite": satellite.id,
                                                    "type": "KILL", "payload": payload})
        assert result["errors"][0]["extensions"]["code"] == code, payload

    cancelled = (await team_admin.data(CANCEL, {"id": command["id"]}))["cancelCommand"]
    assert cancelled == {"id": command["id"], "status": "CANCELLED"}


async def test_command_values_are_checked_after_the_right_to_send(
    graphql_as: ClientFactory, make_team: TeamFactory, make_satellite: SatelliteFactory,
) -> None:
    team = await make_team()
    satellite = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=team.id)
    team_admin = await graphql_as(teams={team.id: TeamRole.TEAM_ADMIN})
    team_user = await graphql_as(teams={team.id: TeamRole.TEAM_USER})
    bad = {"satellite": satellite.id, "type": "HEALTH_CHECK", "expires": 0}

    assert await team_user.error_code(ENQUEUE, bad) == "FORBIDDEN"
    assert await team_admin.error_code(ENQUEUE, bad) == "VALIDATION"
    assert await team_admin.error_code(ENQUEUE, {**bad, "expires": 86_401}) == "VALIDATION"
    assert await team_admin.error_code(ENQUEUE, {**bad, "expires": None,
                                                 "payload": "text"}) == "VALIDATION"
    made = (await team_admin.data(ENQUEUE, {**bad, "expires": 60,
                                            "payload": {"check_type": "connectivity"}}))
    assert made["enqueueCommand"]["teamId"] == team.id
    assert made["enqueueCommand"]["priority"] == "NORMAL"


async def test_the_audit_log_shows_who_did_what_newest_first(
    graphql_as: ClientFactory, make_team: TeamFactory, make_satellite: SatelliteFactory,
) -> None:
    team, other = await make_team(), await make_team()
    satellite = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=team.id)
    team_admin = await graphql_as(teams={team.id: TeamRole.TEAM_ADMIN})
    admin = await graphql_as(global_role=GlobalRole.GLOBAL_ADMIN)
    assert team_admin.user is not None
    await team_admin.data(UPDATE_SATELLITE, {"id": satellite.id, "labels": {"a": "b"}})

    own = (await team_admin.data(AUDIT, {"first": 100}))["auditLog"]
    nodes = [edge["node"] for edge in own["edges"]]
    assert {node["teamId"] for node in nodes} == {team.id}
    newest = nodes[0]
    assert newest["action"] == "satellite.updated"
    assert newest["objectId"] == satellite.id
    assert newest["actor"] == {"type": "USER", "userId": team_admin.user.id,
                               "satelliteId": None, "email": team_admin.user.email}
    ids = [int(node["id"]) for node in nodes]
    assert ids == sorted(ids, reverse=True)

    everything = (await admin.data(AUDIT, {"first": 100}))["auditLog"]
    assert everything["totalCount"] > own["totalCount"]
    filtered = (await admin.data(AUDIT, {"team": other.id}))["auditLog"]
    assert filtered["totalCount"] >= 1
    assert {edge["node"]["teamId"] for edge in filtered["edges"]} == {other.id}
    assert await team_admin.error_code(AUDIT, {"team": other.id}) == "NOT_FOUND"
    assert await admin.error_code(AUDIT, {"first": 101}) == "VALIDATION"


async def test_global_tokens_are_listed_for_global_admins_only(
    graphql_as: ClientFactory, make_team: TeamFactory, issue_token: Any,
) -> None:
    team = await make_team()
    await issue_token(scope=TokenScope.GLOBAL)
    team_token = await issue_token(scope=TokenScope.TEAM, team_id=team.id)
    team_admin = await graphql_as(teams={team.id: TeamRole.TEAM_ADMIN})
    admin = await graphql_as(global_role=GlobalRole.GLOBAL_ADMIN)

    assert (await team_admin.data(TOKENS))["registrationTokens"] == []
    globals_ = (await admin.data(TOKENS))["registrationTokens"]
    assert len(globals_) == 1
    assert globals_[0]["scope"] == "GLOBAL"
    team_tokens = (await team_admin.data(TOKENS, {"team": team.id}))["registrationTokens"]
    assert [token["id"] for token in team_tokens] == [team_token.row.jti]
