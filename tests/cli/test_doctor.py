"""`groundstation doctor`, `--version`, and settings every command checks the same way
(docs/operations.md §3)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.config import Settings
from app.version import VERSION
from tests.cli.conftest import Cli, CliResult, cli_environment, run_cli
from tests.fixtures.server import TEST_DATABASE_URL, make_settings, postgres_only


def report(result: CliResult) -> dict[str, Any]:
    assert len(result.stdout.splitlines()) == 1, result.stdout
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def statuses(document: dict[str, Any]) -> dict[str, str]:
    return {check["name"]: check["status"] for check in document["checks"]}


async def test_doctor_passes_on_a_healthy_database(cli: Cli) -> None:
    result = await cli("doctor", "--json")
    assert result.returncode == 0, result.stdout
    document = report(result)
    assert document["ok"] is True
    assert statuses(document)["database"] == "ok"
    assert statuses(document)["schema"] == "ok"
    assert statuses(document)["secret key"] == "ok"
    table = await cli("doctor")
    assert table.returncode == 0
    assert [line.split()[0] for line in table.stdout.splitlines()] == [
        check["status"] for check in document["checks"]]


@pytest.mark.sqlite_only(reason="the key file and the missing database are SQLite files")
async def test_doctor_reports_a_missing_database_and_a_readable_key_file(tmp_path: Path
                                                                        ) -> None:
    missing = make_settings(tmp_path, database_url=f"sqlite://{tmp_path / 'none.db'}",
                            secret_key=None)
    env = cli_environment(missing)
    del env["SECRET_KEY"]
    result = await run_cli(env, tmp_path, "doctor", "--json")
    assert result.returncode == 1
    checks = {check["name"]: check for check in report(result)["checks"]}
    assert checks["database"]["status"] == "fail"
    assert "groundstation migrate" in checks["database"]["fix"]
    assert checks["schema"]["status"] == "skip"
    assert sorted(path.name for path in tmp_path.iterdir()) == []  # nothing created

    assert (await run_cli(env, tmp_path, "migrate")).returncode == 0
    key_file = tmp_path / "none.db.secret"
    key_file.chmod(0o644)
    result = await run_cli(env, tmp_path, "doctor", "--json")
    checks = {check["name"]: check for check in report(result)["checks"]}
    assert result.returncode == 0  # a warning is not a failure
    assert checks["secret key"]["status"] == "warn"
    assert checks["secret key"]["fix"] == f"chmod 600 {key_file}"


async def test_doctor_and_every_command_refuse_a_bad_log_level(cli: Cli) -> None:
    bad = {"GROUNDSTATION_LOG_LEVEL": "LOUD"}
    for argv in (["satellites"], ["migrate", "--check"], ["serve", "--port", "0"]):
        line = (await cli(*argv, env=bad)).assert_one_line_error()
        assert "GROUNDSTATION_LOG_LEVEL" in line
        assert "LOUD" in line
    result = await cli("doctor", "--json", env=bad)
    assert result.returncode == 1
    document = report(result)
    assert document["checks"][0]["name"] == "settings"
    assert document["checks"][0]["status"] == "fail"
    assert "GROUNDSTATION_LOG_LEVEL" in document["checks"][0]["detail"]
    assert set(statuses(document).values()) == {"fail", "skip"}


async def test_an_unreachable_redis_is_named_as_redis(cli: Cli) -> None:
    down = {"REDIS_URL": "redis://:hunter2@127.0.0.1:1/0"}
    line = (await cli("satellites", env=down)).assert_one_line_error()
    assert line.startswith("error: cannot connect to Redis at redis://***@127.0.0.1:1/0")
    assert "hunter2" not in line
    assert "Error" not in line
    document = report(await cli("doctor", "--json", env=down))
    assert statuses(document)["redis"] == "fail"
    assert "hunter2" not in json.dumps(document)
    wrong = (await cli("satellites", env={"REDIS_URL": "http://cache:6379"})
             ).assert_one_line_error()
    assert wrong == "error: REDIS_URL must start with redis://, rediss:// or unix://"


async def test_version_is_the_package_version(cli: Cli) -> None:
    result = await cli("--version")
    assert (result.returncode, result.stdout) == (0, f"groundstation {VERSION}\n")


@postgres_only
async def test_a_postgres_database_that_does_not_exist_is_named(
    settings: Settings, tmp_path: Path
) -> None:
    assert TEST_DATABASE_URL is not None
    env = cli_environment(settings)
    env["DATABASE_URL"] = TEST_DATABASE_URL.rsplit("/", 1)[0] + "/gs_no_such_database"
    line = (await run_cli(env, tmp_path, "satellites")).assert_one_line_error()
    assert "the database 'gs_no_such_database' does not exist" in line
    assert "InvalidCatalogName" not in line


@postgres_only
async def test_doctor_compares_the_clock_with_postgres(cli: Cli) -> None:
    document = report(await cli("doctor", "--json"))
    assert statuses(document)["clock"] in {"ok", "warn"}
