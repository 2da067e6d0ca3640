"""The checks of `groundstation doctor`, each ok, warn, fail or skip with what to fix.

None creates anything: a SQLite file that does not exist is reported, never made, and
a missing key file is never generated.
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from app.config import Settings, SettingsError, secret_key_file
from app.db import inspect_database
from app.db_problems import describe_database, require_database_file
from app.errors import Unavailable
from app.redis_probe import redis_problem

# The database server's clock may differ from this machine's by this much before it
# matters: leases, expiries and sessions are computed on both sides.
CLOCK_SKEW_WARN_SECONDS = 5.0
_MIGRATE = "run 'groundstation migrate'"


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str | None = None


def _skipped(names: tuple[str, ...], why: str) -> list[Check]:
    return [Check(name, Status.SKIP, why) for name in names]


def _secret_key(settings: Settings) -> Check:
    name = "secret key"
    if settings.secret_key:
        return Check(name, Status.OK, "SECRET_KEY is set")
    if not settings.is_sqlite:
        return Check(name, Status.FAIL, "SECRET_KEY is not set (required when DATABASE_URL "
                     "is not SQLite)", "set SECRET_KEY: at least 32 characters, the same on "
                     "every instance")
    path = settings.sqlite_path
    if path is None:
        return Check(name, Status.OK, "in-memory database: a key for the life of the process")
    key_file = secret_key_file(path)
    if not path.exists():
        return Check(name, Status.SKIP, "no database yet: its key is made with it")
    if not key_file.is_file():
        return Check(name, Status.FAIL, f"SECRET_KEY is unset and {key_file} does not exist",
                     f"set SECRET_KEY or put back the key file; for a new database, {_MIGRATE}")
    mode = stat.S_IMODE(key_file.stat().st_mode)
    if mode & 0o077:
        return Check(name, Status.WARN, f"{key_file} may be read by others (mode {mode:o})",
                     f"chmod 600 {key_file}")
    return Check(name, Status.OK, f"{key_file} (mode 600)")


async def _redis(settings: Settings) -> Check:
    if settings.redis_url is None:
        return Check("redis", Status.SKIP, "REDIS_URL is unset: in-process bus (one instance)")
    problem = await redis_problem(settings.redis_url)
    if problem is not None:
        return Check("redis", Status.FAIL, problem, "start Redis, or fix or unset REDIS_URL")
    return Check("redis", Status.OK, "Redis answers")


def _clock(skew: float | None) -> Check:
    if skew is None:
        return Check("clock", Status.SKIP, "SQLite: the database uses this machine's clock")
    if abs(skew) > CLOCK_SKEW_WARN_SECONDS:
        return Check("clock", Status.WARN,
                     f"the database server's clock is {skew:+.1f} s off this machine's",
                     "synchronise both clocks (NTP)")
    return Check("clock", Status.OK, f"within {abs(skew):.1f} s of the database server's")


async def _database(settings: Settings) -> list[Check]:
    """The database, its schema and its clock."""
    try:
        require_database_file(settings, may_create=False)
        inspection = await inspect_database(settings)
    except Unavailable as error:
        fix = (f"{_MIGRATE} to create it, or point DATABASE_URL or GROUNDSTATION_DATA_DIR at "
               "the right one" if error.code == "database_missing"
               else "see the detail, then check DATABASE_URL")
        return [Check("database", Status.FAIL, error.message, fix),
                *_skipped(("schema", "clock"), "the database is not reachable")]
    migrations = inspection.migrations
    checks = [Check("database", Status.OK, f"reachable: {describe_database(settings)}")]
    if migrations.pending:
        checks.append(Check("schema", Status.FAIL, f"{len(migrations.pending)} migrations "
                            f"pending: {', '.join(migrations.pending)}", _MIGRATE))
    else:
        checks.append(Check("schema", Status.OK,
                            f"up to date ({len(migrations.applied)} migrations applied)"))
    return [*checks, _clock(inspection.clock_skew_seconds)]


async def run_checks(read_settings: Callable[[], Settings]) -> list[Check]:
    """Every check, in order: settings, database, schema, clock, redis, secret key."""
    try:
        settings = read_settings()
    except SettingsError as error:
        return [Check("settings", Status.FAIL, str(error),
                      "fix that variable (in the environment or .env)"),
                *_skipped(("database", "schema", "clock", "redis", "secret key"),
                          "the settings are not valid")]
    settings_check = Check("settings", Status.OK,
                           f"valid; data directory {settings.data_dir}")
    return [settings_check, *await _database(settings), await _redis(settings),
            _secret_key(settings)]


def failed(checks: list[Check]) -> bool:
    return any(check.status is Status.FAIL for check in checks)


__all__ = ["CLOCK_SKEW_WARN_SECONDS", "Check", "Status", "failed", "run_checks"]
