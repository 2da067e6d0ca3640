"""The read commands (docs/operations.md §3): a table by default, one JSON value with
--json, the wire forms, nothing secret; and `user reset-password`."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from app.models import AuditEntry, SatelliteCommand, SatelliteConfigState, SatelliteProcess
from app.models.enums import ActorType, CommandStatus, CommandType, GlobalRole, TeamRole
from app.runtime import Runtime
from app.services.commands.queue import enqueue_command
from app.services.common.actors import CLI_ACTOR
from app.services.people.teams import add_team_member
from tests.cli.conftest import Cli, CliResult
from tests.fixtures.graphql import GraphQLClient, log_in
from tests.fixtures.mcp import InstallFactory
from tests.fixtures.people import PASSWORD, TeamFactory, UserFactory
from tests.fixtures.satellites import SatelliteFactory
from tests.fixtures.server import eventually

SECRET = "s3cret=value-never-shown"
UNKNOWN_ID = "0123456789abcdef0123456789abcdef"


def parsed(result: CliResult) -> Any:
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1, result.stdout  # one line of JSON
    return json.loads(result.stdout)


async def test_team_list_and_show_with_its_members(
    cli: Cli, rt: Runtime, make_team: TeamFactory, make_user: UserFactory
) -> None:
    team = await make_team(name="Acme", slug="acme")
    await make_team(name="Beta", slug="beta")
    user = await make_user(email="ann@example.com")
    await add_team_member(rt, team.id, user_id=user.id, role=TeamRole.TEAM_ADMIN,
                          actor=CLI_ACTOR)
    listed = parsed(await cli("team", "list", "--json"))
    assert [row["slug"] for row in listed] == ["acme", "beta"]
    table = await cli("team", "list")
    assert table.stdout.splitlines()[0].split() == ["id", "slug", "name", "created_at"]
    for reference in ("acme", team.id):
        shown = parsed(await cli("team", "show", reference, "--json"))
        assert shown["id"] == team.id
        assert shown["members"] == [{"user_id": user.id, "email": "ann@example.com",
                                     "role": "team_admin", "since": shown["members"][0]["since"]}]
    readable = await cli("team", "show", "acme")
    assert "members (1)" in readable.stdout
    assert "ann@example.com" in readable.stdout
    missing = await cli("team", "show", "nope")
    assert missing.assert_one_line_error() == "error: Team not found (slug or id 'nope')"
    assert missing.returncode == 1


async def test_users_are_listed_and_shown_without_their_password_hash(
    cli: Cli, make_user: UserFactory, make_team: TeamFactory, rt: Runtime
) -> None:
    admin = await make_user(email="root@example.com", global_role=GlobalRole.GLOBAL_ADMIN)
    team = await make_team(slug="ops")
    await add_team_member(rt, team.id, user_id=admin.id, role=TeamRole.TEAM_USER,
                          actor=CLI_ACTOR)
    listed = await cli("user", "list", "--json")
    assert [row["email"] for row in parsed(listed)] == ["root@example.com"]
    shown = await cli("user", "show", "ROOT@example.com", "--json")
    body = parsed(shown)
    assert body["global_role"] == "global_admin"
    assert body["teams"][0]["team_slug"] == "ops"
    for result in (listed, shown, await cli("user", "show", admin.id)):
        assert "argon2" not in result.stdout
        assert "password" not in result.stdout


async def test_catalog_list_and_show(cli: Cli, install: InstallFactory) -> None:
    listed = parsed(await cli("catalog", "list", "--json"))
    assert [row["slug"] for row in listed] == ["filesystem", "web-search"]
    shown = parsed(await cli("catalog", "show", "filesystem", "--json"))
    assert shown["command"] == "npx"
    assert shown["team_env_schema"][0]["name"] == "ROOT_DIR"
    assert "transport_type" in (await cli("catalog", "list")).stdout.splitlines()[0]
    assert "not found" in (await cli("catalog", "show", "nope")).assert_one_line_error()


async def test_install_list_and_show_mask_secrets(
    cli: Cli, install: InstallFactory, make_team: TeamFactory
) -> None:
    acme = await make_team(slug="acme")
    other = await make_team(slug="other")
    installation = await install(acme.id, env={"ROOT_DIR": "/srv", "DB_PASSWORD": SECRET})
    await install(other.id)
    everything = parsed(await cli("install", "list", "--json"))
    assert len(everything) == 2
    only_acme = parsed(await cli("install", "list", "--team", "acme", "--json"))
    assert [(row["id"], row["team"], row["server"]) for row in only_acme] == [
        (installation.id, "acme", "filesystem")]
    for argv in (("install", "show", installation.id, "--json"),
                 ("install", "show", installation.id)):
        result = await cli(*argv)
        assert result.returncode == 0, result.stderr
        assert SECRET not in result.stdout
        assert "enc:v1" not in result.stdout
        assert "********" in result.stdout
    entry = parsed(await cli("install", "show", installation.id, "--json"))["config_preview"]
    assert entry["env"]["ROOT_DIR"] == "/srv"
    assert (await cli("install", "show", UNKNOWN_ID)).assert_one_line_error() == (
        "error: Installation not found")


async def test_install_itself_still_needs_team_and_server(cli: Cli) -> None:
    result = await cli("install", "--team", "acme")
    assert "--server" in result.assert_one_line_error()
    assert result.returncode == 2


async def test_command_list_filters_and_show_has_result_and_attempts(
    cli: Cli, rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    one = await make_satellite()
    two = await make_satellite()
    sent = [await enqueue_command(rt, satellite_id=satellite.id,
                                  command_type=CommandType.HEALTH_CHECK, actor=CLI_ACTOR)
            for satellite in (one, one, two)]
    await SatelliteCommand.filter(id=sent[0].id).update(
        status=CommandStatus.COMPLETED, result={"reachable": True}, attempts=1)
    await SatelliteCommand.filter(id=sent[1].id).update(
        status=CommandStatus.FAILED, error_message="no route", attempts=3)
    everything = parsed(await cli("command", "list", "--json"))
    assert {row["id"] for row in everything} == {command.id for command in sent}
    of_one = parsed(await cli("command", "list", "--satellite", one.id, "--json"))
    assert {row["id"] for row in of_one} == {sent[0].id, sent[1].id}
    failed = parsed(await cli("command", "list", "--status", "FAILED", "--json"))
    assert [row["id"] for row in failed] == [sent[1].id]
    assert len(parsed(await cli("command", "list", "--limit", "1", "--json"))) == 1
    shown = parsed(await cli("command", "show", sent[0].id, "--json"))
    assert (shown["status"], shown["result"], shown["attempts"]) == (
        "completed", {"reachable": True}, 1)
    shown = parsed(await cli("command", "show", sent[1].id, "--json"))
    assert (shown["error_message"], shown["attempts"], shown["max_attempts"]) == (
        "no route", 3, rt.settings.command_max_attempts)
    bad_limit = await cli("command", "list", "--limit", "0")
    assert bad_limit.returncode == 2
    assert "at least 1" in bad_limit.assert_one_line_error()
    assert (await cli("command", "show", UNKNOWN_ID)).assert_one_line_error() == (
        "error: Command not found")


async def test_satellite_show_has_processes_heartbeat_and_config_state(
    cli: Cli, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite(name="edge-1")
    await SatelliteProcess.create(satellite_id=satellite.id, process_id="filesystem-acme-1",
                                  server_name="Filesystem")
    await SatelliteConfigState.create(satellite_id=satellite.id, config_hash="abc123",
                                      server_count=1)
    shown = parsed(await cli("satellite", "show", satellite.id, "--json"))
    assert shown["name"] == "edge-1"
    assert "last_heartbeat_at" in shown
    assert [row["process_id"] for row in shown["processes"]] == ["filesystem-acme-1"]
    assert shown["config_state"]["config_hash"] == "abc123"
    readable = (await cli("satellite", "show", satellite.id)).stdout
    assert "processes (1)" in readable
    assert "filesystem-acme-1" in readable
    assert "api_key" not in readable
    listed = parsed(await cli("satellite", "list", "--json"))
    assert listed == parsed(await cli("satellites", "--json"))
    assert (await cli("satellite", "show", UNKNOWN_ID)).assert_one_line_error() == (
        "error: Satellite not found")


async def test_reset_password_ends_every_session_and_is_audited(
    cli: Cli, http: aiohttp.ClientSession, make_user: UserFactory
) -> None:
    user = await make_user(email="locked@example.com")
    token = await log_in(http, "locked@example.com")
    me = "{ me { email } }"
    assert (await GraphQLClient(http, token).data(me))["me"]["email"] == "locked@example.com"
    too_short = await cli("user", "reset-password", "locked@example.com", "--password", "short")
    assert "8 to 1024 characters" in too_short.assert_one_line_error()
    result = await cli("user", "reset-password", "locked@example.com",
                       env={"GROUNDSTATION_ADMIN_PASSWORD": "a-new-password-1"})
    assert (result.returncode, result.stdout) == (0, "password reset; 1 session ended\n")

    async def signed_out() -> bool:  # at once with Redis, else within the session cache's time
        return (await GraphQLClient(http, token).execute(me)).get("data", {}).get("me") is None

    await eventually(signed_out)
    assert await log_in(http, "locked@example.com", "a-new-password-1")
    entry = await AuditEntry.get(action="user.password_reset")
    assert (entry.object_id, entry.actor_type) == (user.id, ActorType.CLI)
    assert PASSWORD not in json.dumps(entry.details)
    unknown = await cli("user", "reset-password", "nobody@example.com", "--password", "x" * 9)
    assert "User not found" in unknown.assert_one_line_error()


async def test_metrics_export_prints_the_minute_buckets_as_csv_or_json(
    cli: Cli, rt: Runtime, http: aiohttp.ClientSession, make_satellite: SatelliteFactory,
) -> None:
    satellite = await make_satellite()
    for cpu in (10.0, 30.0, 20.0):
        async with http.post(satellite.path("heartbeat"), json={
                "status": "active", "system_metrics": {"cpu_usage_percent": cpu,
                                                       "memory_usage_mb": 512}},
                headers=satellite.headers) as response:
            assert response.status == 200
    assert await rt.heartbeats.flush()

    exported = await cli("metrics", "export", "--satellite", satellite.id, "--csv")
    assert exported.returncode == 0, exported.stderr
    header, *lines = exported.stdout.splitlines()
    assert header.split(",")[:5] == ["start", "samples", "cpu_min", "cpu_avg", "cpu_max"]
    # The three heartbeats fall in one minute, or (at a minute's turn) two.
    rows = [line.split(",") for line in lines]
    assert sum(int(row[1]) for row in rows) == 3
    assert min(float(row[2]) for row in rows) == 10.0
    assert max(float(row[4]) for row in rows) == 30.0

    hourly = parsed(await cli("metrics", "export", "--satellite", satellite.id,
                              "--resolution", "hour", "--json"))
    assert sum(row["samples"] for row in hourly) == 3
    assert {row["memory_max_mb"] for row in hourly} == {512.0}

    unknown = await cli("metrics", "export", "--satellite", UNKNOWN_ID)
    assert unknown.returncode == 1
    assert "not found" in unknown.assert_one_line_error().lower()
    bad_time = await cli("metrics", "export", "--satellite", satellite.id, "--from", "soon")
    assert bad_time.returncode == 2
    assert "ISO 8601" in bad_time.stderr
