"""Database set-up: tortoise configuration, migrations under a lock, connections.

`serve` and `groundstation migrate` apply pending migrations under a cross-process
lock (a file lock beside a SQLite database; a PostgreSQL advisory lock), so several
processes starting at once migrate once. Every other command opens the database
without migrating and refuses a schema that is behind (docs/operations.md §3, §8).
A database that cannot be used is reported in one line that names it and says what
to do (`app/db_problems.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
from tortoise import Tortoise, connections
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.exceptions import BaseORMException
from tortoise.migrations.api import migrate as run_migrations
from tortoise.migrations.executor import MigrationExecutor, PlanStep

from app.config import Settings
from app.db_problems import explained
from app.errors import Unavailable

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
    # Beside the database, whose directory exists by now (never created here).
    lock_path = path.with_name(path.name + ".migrate-lock")
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


# Told each migration's name once it is applied, and how long it took (seconds).
Progress = Callable[[str, float], None]


@dataclass(frozen=True, slots=True)
class MigrationStatus:
    applied: list[str]
    pending: list[str]  # in the order they would be applied


def _migration_names(steps: list[PlanStep]) -> list[str]:
    return [step.migration.name for step in steps if not step.backward]


async def _status(settings: Settings) -> MigrationStatus:
    """Needs the connection initialised. Applied migrations this version does not know
    (a newer version's) are listed as applied and never pending."""
    executor = MigrationExecutor(connections.get("default"), tortoise_config(settings)["apps"])
    pending = _migration_names(await executor.plan())
    applied = [key.name for key in await executor.recorder.applied_migrations()]
    return MigrationStatus(applied=applied, pending=pending)


@dataclass(frozen=True, slots=True)
class Inspection:
    migrations: MigrationStatus
    # The database server's clock minus this machine's, in seconds (PostgreSQL only;
    # SQLite runs on this machine's clock).
    clock_skew_seconds: float | None


async def inspect_database(settings: Settings) -> Inspection:
    """Connect once and look: which migrations are applied and pending, and the server's
    clock. Changes nothing (a SQLite file that does not exist is created empty: callers
    check for it first)."""
    with explained(settings):
        await Tortoise.init(config=tortoise_config(settings))
        try:
            connection = connections.get("default")
            await connection.execute_query("SELECT 1")
            status = await _status(settings)
            skew = None
            if not settings.is_sqlite:
                before = time.time()
                rows = await connection.execute_query_dict("SELECT now() AS now")
                skew = rows[0]["now"].timestamp() - (before + time.time()) / 2
            return Inspection(status, skew)
        finally:
            await Tortoise.close_connections()


async def migration_status(settings: Settings) -> MigrationStatus:
    """Which migrations the database has and which it lacks; changes nothing."""
    return (await inspect_database(settings)).migrations


def schema_behind(pending: list[str]) -> Unavailable:
    """The refusal of every command but `serve` and `migrate` while migrations are pending."""
    return Unavailable(
        f"the database schema is behind this version ({len(pending)} pending: "
        f"{', '.join(pending)}): run 'groundstation migrate'", code="schema_behind")


async def apply_migrations(settings: Settings, progress: Progress | None = None) -> list[str]:
    """Apply pending migrations under the lock; the names applied, in order. Logged at
    start and end with the count and duration (docs/operations.md §6)."""
    applied: list[str] = []
    started: dict[str, float] = {}
    began = time.monotonic()

    def report(_connection: str, steps: list[PlanStep], _fake: bool, _dry_run: bool) -> None:
        names = _migration_names(steps)
        if names:
            log.info("applying migrations", extra={
                "op": "migrate", "count": len(names), "migrations": names})

    def step(event: str, _app: str, name: str) -> None:
        if event == "apply_start":
            started[name] = time.monotonic()
        elif event == "apply_done":
            applied.append(name)
            if progress is not None:
                progress(name, time.monotonic() - started.get(name, began))

    with explained(settings):
        async with _migration_lock(settings):
            try:
                await run_migrations(config=tortoise_config(settings), reporter=report,
                                     progress=step)
            finally:
                await Tortoise.close_connections()
    duration_ms = round((time.monotonic() - began) * 1000, 1)
    if applied:
        log.info("migrations applied", extra={
            "op": "migrate", "count": len(applied), "duration_ms": duration_ms})
    else:
        log.info("database schema up to date", extra={
            "op": "migrate", "count": 0, "duration_ms": duration_ms})
    return applied


async def open_database(settings: Settings, *, migrate: bool = True) -> None:
    """Connect for this process: migrated first (under the lock), or, with
    `migrate=False`, only when the schema is already up to date."""
    if migrate:
        await apply_migrations(settings)
    with explained(settings):
        await Tortoise.init(config=tortoise_config(settings), _enable_global_fallback=True)
        try:
            await connections.get("default").execute_query("SELECT 1")
            pending = [] if migrate else (await _status(settings)).pending
        except BaseException:
            await close_database()
            raise
    if pending:
        await close_database()
        raise schema_behind(pending)


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
