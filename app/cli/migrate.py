"""`groundstation migrate [--check]` (docs/operations.md §3, §8).

`migrate` may create the database (and the default data directory) and applies what
is pending under the migration lock: one progress line per migration on stderr, the
summary alone on stdout. `--check` changes nothing: exit 0 when up to date, else one
line naming what is pending and exit 1.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from app.cli.database import command_settings, configure_command_logging, prepared
from app.cli.output import write_result
from app.config import Settings
from app.db import apply_migrations, migration_status, schema_behind
from app.db_problems import require_database_file

UP_TO_DATE = "up to date"


def _progress(name: str, seconds: float) -> None:
    print(f"applied {name} ({seconds:.2f} s)", file=sys.stderr, flush=True)


def _summary(applied: list[str]) -> str:
    if not applied:
        return UP_TO_DATE
    return f"applied {len(applied)} migration{'s' if len(applied) != 1 else ''}"


async def _check(settings: Settings) -> str:
    require_database_file(settings, may_create=False)
    pending = (await migration_status(settings)).pending
    if pending:
        raise schema_behind(pending)
    return UP_TO_DATE


def migrate_command(args: argparse.Namespace) -> int:
    settings = command_settings(args)
    configure_command_logging(settings)
    if args.check:
        write_result(asyncio.run(_check(settings)))
        return 0
    settings = prepared(settings, may_create=True)
    write_result(_summary(asyncio.run(apply_migrations(settings, _progress))))
    return 0


__all__ = ["migrate_command"]
