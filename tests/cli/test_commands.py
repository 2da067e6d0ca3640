"""Each CLI command's result, exactly in the forms of docs/operations.md §3, while the
server runs."""

from __future__ import annotations

import asyncio
import json
import re

import aiohttp

from app.models import AuditEntry, RegistrationToken, SatelliteCommand, TeamMembership, User
from app.models.enums import (
    CommandPriority,
    CommandType,
    GlobalRole,
    SatelliteStatus,
    TeamRole,
)
from app.runtime import Runtime
from tests.cli.conftest import Cli
from tests.fixtures.people import TeamFactory
from tests.fixtures.satellites import SatelliteFactory, TestSatellite
from tests.fixtures.server import eventually

ID = re.compile(r"^[0-9a-f]{32}$")
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
API_KEY = re.compile(r"^deploystack_satellite_api_global_[A-Za-z0-9_-]{32}$")
PASSWORD = "correct-horse-battery"


async def status_with(http: aiohttp.ClientSession, satellite: TestSatellite, api_key: str
                      ) -> int:
    headers = {**satellite.headers, "Authorization": f"Bearer {api_key}"}
    async with http.get(satellite.path("commands"), headers=headers) as response:
        return response.status


async def register(http: aiohttp.ClientSession, token: str, name: str
                   ) -> tuple[int, dict[str, object]]:
    async with http.post(
        "/api/satellites/register", json={"name": name},
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        return response.status, await response.json()


async def test_admin_create_prints_the_id_of_a_new_global_admin(cli: Cli, rt: Runtime) -> None:
    result = await cli("admin", "create", "--email", "Admin@Example.com", "--password", PASSWORD)
    assert result.returncode == 0, result.stderr
    assert ID.match(result.stdout.strip())
    user = await User.get(id=result.stdout.strip())
    assert user.email == "admin@example.com"
    assert user.global_role is GlobalRole.GLOBAL_ADMIN
    assert await rt.passwords.verify(user.password_hash, PASSWORD)


async def test_admin_password_can_come_from_the_environment(cli: Cli, rt: Runtime) -> None:
    result = await cli("admin", "create", "--email", "ops@example.com",
                       env={"GROUNDSTATION_ADMIN_PASSWORD": PASSWORD})
    assert result.returncode == 0, result.stderr
    user = await User.get(id=result.line)
    assert await rt.passwords.verify(user.password_hash, PASSWORD)


async def test_team_create_prints_the_team_id_and_makes_the_named_user_its_admin(
    cli: Cli, rt: Runtime
) -> None:
    admin = await cli("admin", "create", "--email", "lead@example.com", "--password", PASSWORD)
    result = await cli("team", "create", "--name", "Platform", "--slug", "platform",
                       "--admin", "lead@example.com")
    assert result.returncode == 0, result.stderr
    assert ID.match(result.stdout.strip())
    membership = await TeamMembership.get(team_id=result.line)
    assert membership.user_id == admin.line  # type: ignore[attr-defined]
    assert membership.role is TeamRole.TEAM_ADMIN


async def test_token_create_prints_only_a_token_that_registers_a_satellite(
    cli: Cli, http: aiohttp.ClientSession
) -> None:
    result = await cli("token", "create", "--scope", "GLOBAL")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1
    token = result.line
    assert token.startswith("deploystack_satellite_global_")
    status, body = await register(http, token, "cli-made-satellite")
    assert status == 200, body
    row = await RegistrationToken.get(used_by_satellite_id=body["satellite"]["id"])  # type: ignore[index]
    assert row.created_by_id is None  # type: ignore[attr-defined]


async def test_token_create_count_prints_that_many_tokens_one_per_line(
    cli: Cli, http: aiohttp.ClientSession
) -> None:
    result = await cli("token", "create", "--scope", "global", "--count", "200")
    assert result.returncode == 0, result.stderr
    tokens = result.stdout.splitlines()
    assert len(tokens) == len(set(tokens)) == 200
    assert all(token.startswith("deploystack_satellite_global_") for token in tokens)
    for number, token in enumerate((tokens[0], tokens[-1])):
        status, body = await register(http, token, f"bulk-satellite-{number}")
        assert status == 200, body
    assert (await register(http, tokens[0], "bulk-satellite-again"))[0] == 401  # single use
    assert await AuditEntry.filter(action="registration_tokens.issued").count() == 1


async def test_token_create_json_lists_ids_and_tokens_and_count_refuses_a_name(
    cli: Cli, rt: Runtime
) -> None:
    as_json = await cli("token", "create", "--scope", "global", "--count", "3", "--json")
    assert as_json.returncode == 0, as_json.stderr
    rows = json.loads(as_json.stdout)
    assert len(rows) == 3
    assert {row["id"] for row in rows} == set(
        await RegistrationToken.all().values_list("jti", flat=True))
    assert all(row["token"].startswith("deploystack_satellite_global_") for row in rows)
    named = await cli("token", "create", "--scope", "global", "--count", "2", "--name", "x-1")
    assert "not with --count" in named.assert_one_line_error()
    too_many = await cli("token", "create", "--scope", "global", "--count", "10001")
    assert "count is 1 to 10,000" in too_many.assert_one_line_error()
    assert await RegistrationToken.all().count() == 3


async def test_a_name_bound_team_token_re_registers_an_existing_satellite(
    cli: Cli, http: aiohttp.ClientSession, make_team: TeamFactory
) -> None:
    team = await make_team(slug="field-ops")
    first = await cli("token", "create", "--scope", "team", "--team", "field-ops")
    status, body = await register(http, first.line, "edge-satellite-7")
    assert status == 200, body
    satellite: dict[str, str] = body["satellite"]  # type: ignore[assignment]
    async with http.post(f"/api/satellites/{satellite['id']}/heartbeat", json={
        "status": "active", "system_metrics": {"cpu_usage_percent": 1, "memory_usage_mb": 1},
    }, headers={"Authorization": f"Bearer {satellite['api_key']}"}) as response:
        assert response.status == 200  # live: an unbound token may not take it over
    unbound = await cli("token", "create", "--scope", "team", "--team", "field-ops")
    bound = await cli("token", "create", "--scope", "Team", "--team", "field-ops",
                      "--hours", "72", "--name", "edge-satellite-7")
    assert bound.line.startswith("deploystack_satellite_team_")

    refused, _ = await register(http, unbound.line, "edge-satellite-7")
    again, renewed = await register(http, bound.line, "edge-satellite-7")
    assert refused == 409
    assert again == 200, renewed
    assert renewed["satellite"]["id"] == body["satellite"]["id"]  # type: ignore[index]
    assert renewed["satellite"]["team_id"] == team.id  # type: ignore[index]


async def test_token_list_shows_tokens_but_never_their_values(
    cli: Cli, make_team: TeamFactory
) -> None:
    await make_team(slug="listing")
    team_token = await cli("token", "create", "--scope", "team", "--team", "listing",
                           "--name", "listed-satellite")
    global_token = await cli("token", "create", "--scope", "global")
    as_json, for_team, table = await asyncio.gather(
        cli("token", "list", "--json"), cli("token", "list", "--team", "listing", "--json"),
        cli("token", "list"),
    )
    for result in (as_json, for_team, table):
        assert result.returncode == 0, result.stderr
        for token in (team_token.line, global_token.line):
            assert token not in result.stdout
            assert token.split(".")[-1] not in result.stdout  # not even the signature

    rows = json.loads(as_json.stdout)
    assert [row["scope"] for row in rows] == ["global", "team"]  # newest first
    assert set(rows[0]) == {"id", "scope", "team_id", "satellite_name", "created_at",
                            "expires_at", "used_at", "used_by_satellite_id", "revoked_at"}
    assert rows[0]["team_id"] is None
    assert rows[0]["used_at"] is None
    assert ISO_Z.match(rows[0]["expires_at"])
    [team_row] = json.loads(for_team.stdout)
    assert team_row["satellite_name"] == "listed-satellite"

    header, *lines = table.stdout.splitlines()
    assert header.split() == ["id", "scope", "team_id", "satellite_name", "created_at",
                              "expires_at", "used_at", "used_by_satellite_id", "revoked_at"]
    assert {line.split()[0] for line in lines} == {row["id"] for row in rows}


async def test_token_revoke_prints_revoked_and_the_token_stops_working(
    cli: Cli, http: aiohttp.ClientSession
) -> None:
    token = await cli("token", "create", "--scope", "global")
    [row] = json.loads((await cli("token", "list", "--json")).stdout)
    result = await cli("token", "revoke", row["id"])
    assert (result.returncode, result.stdout) == (0, "revoked\n")
    status, body = await register(http, token.line, "revoked-token-satellite")
    assert status == 401
    assert body["error"] == "invalid_registration_token"


async def test_command_send_prints_the_id_of_a_queued_command_with_any_case_flags(
    cli: Cli, http: aiohttp.ClientSession, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite()
    result = await cli(
        "command", "send", "--satellite", satellite.id, "--type", "HEALTH_CHECK",
        "--priority", "High", "--payload", '{"check_type": "connectivity"}',
        "--expires-in", "120",
    )
    assert result.returncode == 0, result.stderr
    command = await SatelliteCommand.get(id=result.stdout.strip())
    assert command.command_type is CommandType.HEALTH_CHECK
    assert command.priority is CommandPriority.HIGH
    assert command.payload == {"check_type": "connectivity"}
    assert command.created_by_id is None  # type: ignore[attr-defined]
    assert 110 <= (command.expires_at - command.created_at).total_seconds() <= 130

    # Another process wrote it: the server notices within one refresh interval, so a
    # long poll (not an instant one) is what is guaranteed to see it.
    async with http.get(
        satellite.path("commands"), params={"wait": "20"}, headers=satellite.headers
    ) as response:
        delivered = (await response.json())["commands"]
    assert [item["id"] for item in delivered] == [command.id]


async def test_satellites_lists_rest_forms_as_json_and_as_a_table(
    cli: Cli, http: aiohttp.ClientSession, make_satellite: SatelliteFactory, rt: Runtime
) -> None:
    beating = await make_satellite(name="alpha-satellite")
    await make_satellite(name="bravo-satellite", active=False)
    heartbeat = {"status": "active", "system_metrics": {"cpu_usage_percent": 1,
                                                         "memory_usage_mb": 64}}
    async with http.post(beating.path("heartbeat"), json=heartbeat,
                         headers=beating.headers) as response:
        assert response.status == 200

    assert await rt.heartbeats.flush()  # what the flusher does each interval, done now
    as_json, table = await asyncio.gather(cli("satellites", "--json"), cli("satellites"))
    alpha, bravo = json.loads(as_json.stdout)
    assert as_json.stdout.count("\n") == 1  # one JSON array on one line
    assert alpha == {"id": beating.id, "name": "alpha-satellite", "satellite_type": "global",
                     "team_id": None, "status": "active", "online": True,
                     "last_heartbeat_at": alpha["last_heartbeat_at"]}
    assert ISO_Z.match(alpha["last_heartbeat_at"])
    assert (bravo["status"], bravo["online"], bravo["last_heartbeat_at"]) == (
        "inactive", False, None
    )

    header, *lines = table.stdout.splitlines()
    assert header.split() == ["id", "name", "satellite_type", "team_id", "status", "online",
                              "last_heartbeat_at"]
    assert lines[1].split()[1:] == ["bravo-satellite", "global", "null", "inactive", "false",
                                    "null"]


async def test_disable_and_enable_take_effect_on_the_running_server(
    cli: Cli, http: aiohttp.ClientSession, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite()
    disabled = await cli("satellite", "disable", satellite.id)
    assert (disabled.returncode, disabled.stdout) == (0, "ok\n")

    async def refused() -> bool:
        return await status_with(http, satellite, satellite.api_key) == 401

    await eventually(refused)
    [row] = json.loads((await cli("satellites", "--json")).stdout)
    assert row["status"] == SatelliteStatus.DISABLED.value
    enabled = await cli("satellite", "enable", satellite.id)
    assert (enabled.returncode, enabled.stdout) == (0, "ok\n")

    async def accepted() -> bool:
        return await status_with(http, satellite, satellite.api_key) == 200

    await eventually(accepted)


async def test_rotate_key_prints_a_new_key_and_the_old_one_stops_working(
    cli: Cli, http: aiohttp.ClientSession, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite()
    assert await status_with(http, satellite, satellite.api_key) == 200  # cached as verified
    result = await cli("satellite", "rotate-key", satellite.id)
    assert result.returncode == 0, result.stderr
    new_key = result.stdout.strip()
    assert API_KEY.match(new_key)
    assert new_key != satellite.api_key

    async def rotated() -> bool:
        return await status_with(http, satellite, satellite.api_key) == 401

    await eventually(rotated)
    assert await status_with(http, satellite, new_key) == 200


async def test_delete_prints_ok_and_the_satellite_disappears(
    cli: Cli, http: aiohttp.ClientSession, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite()
    result = await cli("satellite", "delete", satellite.id)
    assert (result.returncode, result.stdout) == (0, "ok\n")
    assert json.loads((await cli("satellites", "--json")).stdout) == []

    async def gone() -> bool:
        return await status_with(http, satellite, satellite.api_key) == 401

    await eventually(gone)
