"""One wording per kind of missing object, whichever way it is reached (docs/graphql.md §4):
`<Kind> not found`, with its stable `reason`."""

from __future__ import annotations

import pytest

from app.models import Team
from app.models.enums import GlobalRole
from tests.fixtures.graphql import ClientFactory, GraphQLClient

MISSING = "0" * 32


@pytest.fixture
async def admin(graphql_as: ClientFactory) -> GraphQLClient:
    return await graphql_as(global_role=GlobalRole.GLOBAL_ADMIN)


@pytest.mark.parametrize(("document", "message", "reason"), [
    ('mutation { updateSatellite(id: "%s", name: "x") { id } }', "Satellite not found",
     "satellite_not_found"),
    ('mutation { deleteSatellite(id: "%s") }', "Satellite not found", "satellite_not_found"),
    ('mutation { rotateSatelliteKey(id: "%s") { apiKey } }', "Satellite not found",
     "satellite_not_found"),
    ('mutation { enqueueCommand(satelliteId: "%s", commandType: HEALTH_CHECK) { id } }',
     "Satellite not found", "satellite_not_found"),
    ('mutation { setTeamLimits(teamId: "%s", maxProcesses: 3) { id } }', "Team not found",
     "team_not_found"),
    ('mutation { revokeRegistrationToken(id: "%s") }', "Registration token not found",
     "token_not_found"),
    ('mutation { cancelCommand(id: "%s") { id } }', "Command not found", "command_not_found"),
    ('mutation { deleteInstallation(id: "%s") }', "Installation not found",
     "installation_not_found"),
])
async def test_each_kind_of_missing_object_is_worded_one_way(
    admin: GraphQLClient, document: str, message: str, reason: str,
) -> None:
    result = await admin.execute(document % MISSING)
    (error,) = result["errors"]
    assert error["message"] == message
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert error["extensions"]["reason"] == reason


async def test_a_missing_catalogue_server_is_worded_like_everywhere_else(
    admin: GraphQLClient, team_a: Team,
) -> None:
    result = await admin.execute(
        "mutation($team: ID!, $server: ID!) { installMcpServer(teamId: $team, serverId: $server)"
        " { id } }", {"team": team_a.id, "server": MISSING})
    assert result["errors"][0]["message"] == "MCP server not found"
