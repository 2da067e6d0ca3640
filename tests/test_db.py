"""Database set-up: pool sizing, and migrations applied once when processes start together."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
from tortoise import Tortoise, connections

from app.config import Settings, SettingsError, settings_from_mapping
from app.db import _PG_MIGRATION_LOCK_KEY, close_database, database_url, open_database
from tests.fixtures.server import database_url_for, eventually, make_settings, postgres_only

PROJECT_ROOT = Path(__file__).resolve().parents[1]

_OPEN_DATABASE = """
import asyncio, sys
from app.config import Settings
from app.db import close_database, open_database

async def main() -> None:
    await open_database(Settings(database_url=sys.argv[1], secret_key=sys.argv[2]))
    await close_database()

asyncio.run(main())
"""


def test_postgres_pool_is_sized_from_settings_unless_the_url_says() -> None:
    sized = settings_from_mapping({
        "DATABASE_URL": "postgresql://gs@db.example/gs", "SECRET_KEY": "k" * 32,
        "GROUNDSTATION_DB_POOL_MIN": "4", "GROUNDSTATION_DB_POOL_MAX": "40",
    })
    assert database_url(sized) == "postgres://gs@db.example/gs?minsize=4&maxsize=40"
    assert database_url(Settings(database_url="postgres://db/gs")).endswith(
        "?minsize=2&maxsize=20")
    explicit = Settings(database_url="postgres://db/gs?maxsize=8")
    assert database_url(explicit) == "postgres://db/gs?maxsize=8&minsize=2"
    assert "minsize" not in database_url(Settings(database_url="sqlite://gs.db"))


@pytest.mark.parametrize(("low", "high"), [("0", "5"), ("6", "5")])
def test_pool_bounds_are_validated(low: str, high: str) -> None:
    with pytest.raises(SettingsError, match="GROUNDSTATION_DB_POOL_MIN"):
        settings_from_mapping({"DATABASE_URL": "postgres://db/gs",
                               "GROUNDSTATION_DB_POOL_MIN": low,
                               "GROUNDSTATION_DB_POOL_MAX": high})


async def start_opening(settings: Settings) -> asyncio.subprocess.Process:
    assert settings.secret_key is not None
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", _OPEN_DATABASE, settings.database_url, settings.secret_key,
        cwd=PROJECT_ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )


async def finished_cleanly(process: asyncio.subprocess.Process) -> None:
    _, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()


async def assert_migrated_once(settings: Settings) -> None:
    """Every migration recorded once and every model's table present and readable."""
    await open_database(settings)
    try:
        rows = await connections.get("default").execute_query_dict(
            'SELECT "app", "name" FROM "tortoise_migrations"')
        names = [(row["app"], row["name"]) for row in rows]
        assert names
        assert len(names) == len(set(names))
        for model in Tortoise.apps["models"].values():
            await model.all().count()
    finally:
        await close_database()


async def test_processes_starting_together_migrate_once(tmp_path: Path) -> None:
    # Runs on both backends: a file lock beside SQLite, an advisory lock on PostgreSQL.
    settings = make_settings(tmp_path, database_url=database_url_for(tmp_path, migrated=False))
    processes = [await start_opening(settings) for _ in range(3)]
    await asyncio.gather(*(finished_cleanly(process) for process in processes))
    await assert_migrated_once(settings)


@postgres_only
async def test_a_starting_process_waits_for_the_migration_lock(tmp_path: Path) -> None:
    # Another instance is migrating (holds the advisory lock): a starting process waits
    # on the lock without touching the schema, then migrates once it is released.
    settings = make_settings(tmp_path, database_url=database_url_for(tmp_path, migrated=False))
    holder = await asyncpg.connect(settings.database_url)
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", _PG_MIGRATION_LOCK_KEY)
        process = await start_opening(settings)

        async def waiting_on_the_lock() -> bool:
            return bool(await holder.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ))

        await eventually(waiting_on_the_lock, timeout=30)
        assert await holder.fetchval("SELECT to_regclass('tortoise_migrations')") is None
        await holder.execute("SELECT pg_advisory_unlock($1)", _PG_MIGRATION_LOCK_KEY)
        await finished_cleanly(process)
    finally:
        await holder.close()
    await assert_migrated_once(settings)


@postgres_only
async def test_postgres_sessions_run_in_utc_whatever_the_server_zone(tmp_path: Path) -> None:
    # DATE(timestamptz) (usage per day) and timestamps rendered as text follow the
    # session's TimeZone: pinned to UTC, not left to the server's configuration.
    settings = make_settings(tmp_path)
    admin = await asyncpg.connect(settings.database_url)
    try:
        name = urlsplit(settings.database_url).path.lstrip("/")
        await admin.execute(f"ALTER DATABASE \"{name}\" SET TimeZone = 'Asia/Tokyo'")
    finally:
        await admin.close()
    await open_database(settings)
    try:
        rows = await connections.get("default").execute_query_dict("SHOW TimeZone")
        assert rows == [{"TimeZone": "UTC"}]
    finally:
        await close_database()
