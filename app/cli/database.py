"""Which database a command uses and how it opens it (docs/operations.md §3).

- `serve`, `migrate` and `admin create` may create the database (and the default
  data directory); every other command refuses one that does not exist, in one line
  naming the path and the settings.
- Only `serve` and `migrate` migrate (`admin create` migrates a database it has just
  created); every other command refuses a schema that is behind.
"""

from __future__ import annotations

import argparse
import sys
from enum import Enum

from app.config import Settings, read_settings, resolve_secret_key
from app.db import apply_migrations, migration_status, open_database
from app.db_problems import require_database_file
from app.errors import Unavailable
from app.logs import configure_logging
from app.redis_probe import redis_problem
from app.redis_url import safe_url


class Access(Enum):
    EXISTING = "existing"  # the database must exist, its schema up to date
    CREATE = "create"  # a missing database is created (and migrated)


def command_settings(args: argparse.Namespace) -> Settings:
    """The settings, read once; with `--verbose`, which database and data directory the
    command uses (on stderr, the URL without its password)."""
    settings = read_settings()
    if getattr(args, "verbose", False):
        url = safe_url(settings.database_url.split("?", 1)[0])
        print(f"database: {url}", file=sys.stderr)
        print(f"data dir: {settings.data_dir}", file=sys.stderr, flush=True)
    return settings


def configure_command_logging(settings: Settings) -> None:
    """One-shot commands keep stderr quiet (warnings and up) unless DEBUG was asked for."""
    configure_logging("DEBUG" if settings.log_level == "DEBUG" else "WARNING")


def prepared(settings: Settings, *, may_create: bool) -> Settings:
    """The settings with SECRET_KEY resolved, once the SQLite file is known to exist or
    may be created; nothing is created for a command that may not create a database."""
    require_database_file(settings, may_create=may_create)
    return resolve_secret_key(settings, create=may_create)


async def open_for_command(settings: Settings, access: Access) -> Settings:
    """Open the database for a one-shot command (never migrating an existing one)."""
    settings = prepared(settings, may_create=access is Access.CREATE)
    if settings.redis_url is not None:
        problem = await redis_problem(settings.redis_url)
        if problem is not None:
            raise Unavailable(problem, code="redis_unreachable")
    if access is Access.CREATE and not (await migration_status(settings)).applied:
        await apply_migrations(settings)  # a database this command has just created
    await open_database(settings, migrate=False)
    return settings


__all__ = [
    "Access", "command_settings", "configure_command_logging", "open_for_command", "prepared",
]
