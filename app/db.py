"""Database set-up: tortoise configuration, migrations under a lock, connections.

Every command that opens the database calls `open_database()`, which applies
pending migrations first under a cross-process lock (a file lock beside a
SQLite database; a PostgreSQL advisory lock), so several processes starting
at once migrate once.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
from tortoise import Tortoise, connections
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.exceptions import BaseORMException
from tortoise.migrations.api import migrate

from app.config import Settings

log = logging.getLogger(__name__)

MODELS_MODULE = "app.models"
MIGRATIONS_MODULE = "app.migrations"
# Arbitrary constant shared by every instance: the migration advisory lock's key.
_PG_MIGRATION_LOCK_KEY = 0x6753_7461  # "gSta"

# Everything a database call can raise for database reasons. Tortoise translates only
# some asyncpg errors (integrity, syntax, data); the rest (a trigger's RAISE, a lost
# connection, a serialization failure) reach the caller as asyncpg's own classes.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    BaseORMException, OSError, asyncpg.PostgresError, asyncpg.InterfaceError,
)

_SQLITE_DEFAULTS = {"journal_mode": "WAL", "synchronous": "NORMAL", "busy_timeout": "10000"}


def database_url(settings: Settings) -> str:
    """The configured URL with our defaults filled in: WAL and a busy timeout on
    SQLite; the pool size (GROUNDSTATION_DB_POOL_MIN/MAX) on PostgreSQL, where
    asyncpg's own default of 1–5 connections would queue concurrent requests.
    Values already in the URL's query win."""
    parts = urlsplit(settings.database_url)
    query = dict(parse_qsl(parts.query))
    defaults = _SQLITE_DEFAULTS if settings.is_sqlite else {
        "minsize": str(settings.db_pool_min), "maxsize": str(settings.db_pool_max),
    }
    for key, value in defaults.items():
        query.setdefault(key, value)
    scheme = "postgres" if parts.scheme == "postgresql" else parts.scheme
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def _connection_config(settings: Settings) -> str | dict[str, Any]:
    url = database_url(settings)
    if settings.is_sqlite:
        return url
    # Sessions in UTC whatever the server's TimeZone: DATE(timestamptz) and any
    # timestamp rendered as text then mean the same day and time everywhere.
    config = expand_db_url(url)
    config["credentials"]["server_settings"] = {"TimeZone": "UTC"}
    return config


def tortoise_config(settings: Settings) -> dict[str, Any]:
    return {
        "connections": {"default": _connection_config(settings)},
        "apps": {
            "models": {
                "models": [MODELS_MODULE],
                "default_connection": "default",
                "migrations": MIGRATIONS_MODULE,
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


# For `tortoise makemigrations` (pyproject's [tool.tortoise]); never used at run time.
TORTOISE_ORM = tortoise_config(Settings(database_url="sqlite://./dev-migrations.db"))


@contextlib.contextmanager
def _sqlite_file_lock(path: Path) -> Iterator[None]:
    lock_path = path.with_name(path.name + ".migrate-lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@contextlib.asynccontextmanager
async def _migration_lock(settings: Settings) -> AsyncIterator[None]:
    path = settings.sqlite_path
    if settings.is_sqlite:
        if path is None:
            yield
            return
        lock = _sqlite_file_lock(path)
        await asyncio.to_thread(lock.__enter__)
        try:
            yield
        finally:
            lock.__exit__(None, None, None)
        return
    conn = await asyncpg.connect(settings.database_url.split("?", 1)[0])
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _PG_MIGRATION_LOCK_KEY)
        try:
            yield
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _PG_MIGRATION_LOCK_KEY)
    finally:
        await conn.close()


async def apply_migrations(settings: Settings) -> None:
    async with _migration_lock(settings):
        await migrate(config=tortoise_config(settings))
        await Tortoise.close_connections()


async def open_database(settings: Settings) -> None:
    """Migrate (under the lock), then connect for this process."""
    await apply_migrations(settings)
    await Tortoise.init(config=tortoise_config(settings), _enable_global_fallback=True)


async def close_database() -> None:
    await connections.close_all(discard=True)
    await Tortoise.close_connections()


async def database_reachable() -> bool:
    try:
        await connections.get("default").execute_query("SELECT 1")
    except Exception:  # noqa: BLE001 - any failure means "not reachable" for health
        log.warning("database health check failed", exc_info=True)
        return False
    return True
