"""`groundstation migrate [--check]`, `serve --no-migrate`, and commands that never migrate
(docs/operations.md §3, §8)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from pathlib import Path

import pytest

from app.config import Settings
from tests.cli.conftest import ROOT, cli_environment, run_cli
from tests.fixtures.server import database_url_for, make_settings

MIGRATIONS = sorted(path.stem for path in (ROOT / "app" / "migrations").glob("[0-9]*_*.py"))
LATEST = MIGRATIONS[-1]
# The `behind` database has the first migration only.
PENDING_WHEN_BEHIND = len(MIGRATIONS) - 1

# Migrates a database up to one migration (a database an older version left behind).
_MIGRATE_TO = """
import asyncio, sys
from tortoise import Tortoise
from tortoise.migrations.api import migrate
from app.config import Settings
from app.db import tortoise_config

async def main() -> None:
    config = tortoise_config(Settings(database_url=sys.argv[1], secret_key="k" * 32))
    await migrate(config=config, target=f"models.{sys.argv[2]}")
    await Tortoise.close_connections()

asyncio.run(main())
"""


async def migrated_to(settings: Settings, name: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _MIGRATE_TO, settings.database_url, name, cwd=ROOT,
        stderr=asyncio.subprocess.PIPE)
    _, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()


@pytest.fixture
async def behind(tmp_path: Path) -> Settings:
    """A database two versions behind: only the first migration applied."""
    settings = make_settings(tmp_path, database_url=database_url_for(tmp_path, migrated=False))
    await migrated_to(settings, "0001_initial")
    return settings


async def test_migrate_applies_what_is_pending_once_with_progress_and_a_summary(
    behind: Settings, tmp_path: Path
) -> None:
    env = cli_environment(behind)
    check = await run_cli(env, tmp_path, "migrate", "--check")
    line = check.assert_one_line_error()
    assert check.returncode == 1
    assert "0002_client_sessions_config_state" in line
    assert LATEST in line
    assert f"{PENDING_WHEN_BEHIND} pending" in line

    applied = await run_cli(env, tmp_path, "migrate")
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout == f"applied {PENDING_WHEN_BEHIND} migrations\n"
    progress = applied.stderr.strip().splitlines()
    assert [entry.split(" ")[1] for entry in progress] == MIGRATIONS[1:]

    again = await run_cli(env, tmp_path, "migrate")
    assert (again.returncode, again.stdout, again.stderr) == (0, "up to date\n", "")
    check = await run_cli(env, tmp_path, "migrate", "--check")
    assert (check.returncode, check.stdout) == (0, "up to date\n")


@pytest.mark.parametrize("argv", [
    ["satellites"], ["team", "list"], ["user", "list", "--json"],
    ["admin", "create", "--email", "a@example.com", "--password", "correct-horse-battery"],
], ids=lambda argv: "-".join(argv[:2]))
async def test_other_commands_never_migrate_a_database_that_is_behind(
    behind: Settings, tmp_path: Path, argv: list[str]
) -> None:
    result = await run_cli(cli_environment(behind), tmp_path, *argv)
    line = result.assert_one_line_error()
    assert result.returncode == 1
    assert line.startswith("error: the database schema is behind this version")
    assert line.endswith("run 'groundstation migrate'")
    assert (await run_cli(cli_environment(behind), tmp_path, "migrate", "--check")
            ).returncode == 1  # still behind: nothing was migrated


@pytest.mark.sqlite_only(reason="counts the migration rows in the SQLite file")
async def test_admin_create_creates_and_migrates_a_new_database(tmp_path: Path) -> None:
    path = tmp_path / "new" / "gs.db"
    path.parent.mkdir()
    settings = make_settings(tmp_path, database_url=f"sqlite://{path}")
    result = await run_cli(cli_environment(settings), tmp_path, "admin", "create",
                           "--email", "a@example.com", "--password", "correct-horse-battery")
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM tortoise_migrations").fetchone()[0] == len(
            MIGRATIONS)
        assert db.execute("SELECT count(*) FROM users").fetchone()[0] == 1


async def test_serve_without_migrating_refuses_a_schema_that_is_behind(
    behind: Settings, tmp_path: Path
) -> None:
    result = await run_cli(cli_environment(behind), tmp_path, "serve", "--port", "0",
                           "--no-migrate")
    assert result.returncode == 1
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert "the database schema is behind this version" in errors[0]
    assert "Traceback" not in result.stderr


async def test_serve_without_migrating_needs_an_existing_database(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, database_url=f"sqlite://{tmp_path / 'none.db'}")
    result = await run_cli(cli_environment(settings), tmp_path, "serve", "--no-migrate")
    assert "no database at" in result.assert_one_line_error()
    assert not (tmp_path / "none.db").exists()


async def test_serve_migrates_at_start_and_logs_it(behind: Settings, tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "serve", "--port", "0", env=cli_environment(behind),
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    try:
        url = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        assert url.startswith("http://"), url
    finally:
        if process.returncode is None:
            process.terminate()
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    logs = [json.loads(line) for line in stderr.decode().splitlines()]
    migrations = [entry for entry in logs if entry.get("op") == "migrate"]
    assert [entry["msg"] for entry in migrations] == ["applying migrations",
                                                       "migrations applied"]
    assert migrations[0]["count"] == PENDING_WHEN_BEHIND
    assert migrations[1]["count"] == PENDING_WHEN_BEHIND
    assert migrations[1]["duration_ms"] >= 0
    assert (await run_cli(cli_environment(behind), tmp_path, "migrate", "--check")
            ).returncode == 0
