"""`groundstation install` (docs/operations.md §3): a team installation, its `configure` commands,
the installation id on stdout; every refusal one error line with nothing written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.auth.secrets import is_encrypted
from app.cli import main
from app.models import McpInstallation, McpServer, SatelliteCommand
from app.models.enums import CommandPriority, CommandStatus, CommandType, SatelliteType
from app.runtime import Runtime
from app.services.mcp.installations import AWAITING_CONFIG
from tests.cli.conftest import Cli
from tests.fixtures.people import TeamFactory, UserFactory
from tests.fixtures.satellites import SatelliteFactory
from tests.fixtures.server import stored_bytes

ID = re.compile(r"^[0-9a-f]{32}$")
FILESYSTEM = ["--server", "filesystem", "--env", "ROOT_DIR=/srv/data"]


async def configures(satellite_id: str) -> list[SatelliteCommand]:
    return await SatelliteCommand.filter(
        satellite_id=satellite_id, command_type=CommandType.CONFIGURE
    ).all()


async def test_install_prints_the_id_and_enqueues_configure_for_a_global_satellite(
    cli: Cli, rt: Runtime, catalog: dict[str, McpServer], make_team: TeamFactory,
    make_satellite: SatelliteFactory,
) -> None:
    team = await make_team(slug="acme")
    satellite = await make_satellite()

    result = await cli("install", "--team", "acme", *FILESYSTEM, "--name", "Shared files",
                       "--env", "LOG_LEVEL=debug")

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert ID.match(result.line)
    installation = await McpInstallation.get(id=result.line).select_related("server", "team")
    assert (installation.team.id, installation.server.slug) == (team.id, "filesystem")
    assert installation.name == "Shared files"
    assert installation.env == {"ROOT_DIR": "/srv/data", "LOG_LEVEL": "debug"}
    assert installation.status == "provisioning"
    [command] = await configures(satellite.id)
    assert command.priority is CommandPriority.IMMEDIATE
    assert command.status is CommandStatus.PENDING
    assert command.payload == {"event": "mcp_installation_created",
                               "installation_id": installation.id, "team_id": team.id}


async def test_only_the_pinned_satellite_is_configured_and_owner_args_headers_pass_through(
    cli: Cli, rt: Runtime, catalog: dict[str, McpServer], make_team: TeamFactory,
    make_satellite: SatelliteFactory, make_user: UserFactory,
) -> None:
    await make_team(slug="acme")
    owner = await make_user(email="owner@example.com")
    pinned, other = await make_satellite(), await make_satellite()

    files = await cli("install", "--team", "acme", *FILESYSTEM, "--arg", "/srv",
                      "--arg=--read-only", "--pin", pinned.id, "--owner", "Owner@Example.com")
    search = await cli("install", "--team", "acme", "--server", "web-search",
                       "--header", "Authorization=Bearer abc==")

    assert files.returncode == 0, files.stderr
    assert search.returncode == 0, search.stderr
    installation = await McpInstallation.get(id=files.line)
    assert installation.args == ["/srv", "--read-only"]
    assert installation.pinned_satellite_id == pinned.id  # type: ignore[attr-defined]
    assert installation.owner_id == owner.id  # type: ignore[attr-defined]
    assert {c.payload["installation_id"] for c in await configures(other.id)} == {search.line}
    web = await McpInstallation.get(id=search.line)
    assert rt.secrets.decrypt(web.headers["Authorization"]) == "Bearer abc=="


async def test_a_secret_value_is_stored_encrypted_and_keeps_its_equals_signs(
    cli: Cli, rt: Runtime, catalog: dict[str, McpServer], make_team: TeamFactory,
) -> None:
    await make_team(slug="acme")

    result = await cli("install", "--team", "acme", *FILESYSTEM,
                       "--env", "DB_PASSWORD=hunter2=xyz==")

    assert result.returncode == 0, result.stderr
    stored = (await McpInstallation.get(id=result.line)).env
    assert is_encrypted(stored["DB_PASSWORD"])
    assert rt.secrets.decrypt(stored["DB_PASSWORD"]) == "hunter2=xyz=="
    assert b"hunter2=xyz" not in await stored_bytes(rt.settings)


async def test_a_missing_required_value_installs_awaiting_config_and_says_so(
    cli: Cli, rt: Runtime, catalog: dict[str, McpServer], make_team: TeamFactory,
) -> None:
    await make_team(slug="acme")

    result = await cli("install", "--team", "acme", "--server", "filesystem")

    assert result.returncode == 0, result.stderr
    assert ID.match(result.line)
    assert result.stderr.strip() == (
        "warning: installation is awaiting_config: team env ROOT_DIR is required"
    )
    assert (await McpInstallation.get(id=result.line)).status == AWAITING_CONFIG


@pytest.mark.parametrize(("flags", "expected"), [
    (["--env", "ROOT_DIR"], "argument --env: expected KEY=VALUE, got 'ROOT_DIR'"),
    (["--env", "=/srv"], "argument --env: expected KEY=VALUE, got '=/srv'"),
    (["--env", "ROOT_DIR=/a", "--env", "ROOT_DIR=/b"], "argument --env: 'ROOT_DIR' given twice"),
    (["--header", "Authorization"], "argument --header: expected KEY=VALUE"),
], ids=["no-equals", "empty-key", "twice", "header"])
async def test_a_malformed_pair_is_a_usage_error_and_writes_nothing(
    cli: Cli, rt: Runtime, catalog: dict[str, McpServer], make_team: TeamFactory,
    make_satellite: SatelliteFactory, flags: list[str], expected: str,
) -> None:
    await make_team(slug="acme")
    satellite = await make_satellite()

    result = await cli("install", "--team", "acme", "--server", "filesystem", *flags)

    assert result.returncode == 2
    assert expected in result.assert_one_line_error()
    assert await McpInstallation.all().count() == 0
    assert await configures(satellite.id) == []


@pytest.mark.parametrize(("flags", "expected"), [
    (["--team", "nope", *FILESYSTEM], "Team not found (slug 'nope')"),
    (["--team", "acme", "--server", "nope"], "MCP server not found (slug 'nope')"),
    (["--team", "acme", *FILESYSTEM, "--owner", "ghost@example.com"],
     "User not found (email 'ghost@example.com')"),
    (["--team", "acme", *FILESYSTEM, "--env", "NOT_IN_SCHEMA=1"], "team env"),
    (["--team", "acme", "--server", "web-search", "--header", "X-Other=1"], "team headers"),
    (["--team", "acme", *FILESYSTEM, "--pin", "0123456789abcdef0123456789abcdef"],
     "Satellite not found"),
], ids=["team", "server", "owner", "env-schema", "header-schema", "pin"])
async def test_unknown_names_and_service_refusals_are_one_error_line_and_write_nothing(
    cli: Cli, rt: Runtime, catalog: dict[str, McpServer], make_team: TeamFactory,
    make_satellite: SatelliteFactory, flags: list[str], expected: str,
) -> None:
    await make_team(slug="acme")
    satellite = await make_satellite()

    result = await cli("install", *flags)

    assert result.returncode == 1
    line = result.assert_one_line_error()
    assert expected in line, line
    assert await McpInstallation.all().count() == 0
    assert await configures(satellite.id) == []


async def test_pinning_to_another_teams_satellite_is_refused(
    cli: Cli, rt: Runtime, catalog: dict[str, McpServer], make_team: TeamFactory,
    make_satellite: SatelliteFactory,
) -> None:
    await make_team(slug="acme")
    other_team = await make_team(slug="other")
    foreign = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=other_team.id)

    result = await cli("install", "--team", "acme", *FILESYSTEM, "--pin", foreign.id)

    assert result.returncode == 1
    assert "pinned only to a global satellite" in result.assert_one_line_error()
    assert await McpInstallation.all().count() == 0


def test_install_answers_help(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(["install", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: groundstation install")
    for flag in ("--team", "--server", "--name", "--env", "--arg", "--header", "--pin",
                 "--owner"):
        assert flag in out
    assert list(tmp_path.iterdir()) == []  # help never touches the database
