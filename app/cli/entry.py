"""The entry point: parse, read settings once, run one command, report one line on failure."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from app.cli.commands import Handler, Invocation
from app.cli.database import (
    Access,
    command_settings,
    configure_command_logging,
    open_for_command,
)
from app.cli.output import write_result
from app.cli.parser import parse
from app.config import Settings, SettingsError
from app.db import close_database
from app.errors import AppError
from app.runtime import build_runtime

log = logging.getLogger("app.cli")

ADMIN_PASSWORD_ENV = "GROUNDSTATION_ADMIN_PASSWORD"
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130


def _fail(message: str, code: int = EXIT_FAILURE) -> int:
    one_line = " ".join(message.split()) or "unknown error"
    print(f"error: {one_line}", file=sys.stderr, flush=True)
    return code


def _os_error_line(error: OSError) -> str:
    """A file error as a person reads it: what, and which file (no errno number)."""
    reason = (error.strerror or "failed").lower()
    return f"{error.filename}: {reason}" if error.filename else reason


async def _run_command(
    handler: Handler, access: Access, settings: Settings, args: argparse.Namespace,
    admin_password: str | None,
) -> str:
    """Open the database (never migrating an existing one), run one handler, close again."""
    settings = await open_for_command(settings, access)
    try:
        rt = build_runtime(settings)
        await rt.bus.start()
        try:
            return await handler(Invocation(rt, args, admin_password))
        finally:
            await rt.bus.close()
            await rt.limits.close()
    finally:
        await close_database()


def _run(args: argparse.Namespace) -> int:
    if args.standalone is not None:  # serve, migrate, doctor: their own database handling
        status: int = args.standalone(args)
        return status
    settings = command_settings(args)
    configure_command_logging(settings)
    # The one read of this variable, here at start-up beside the settings.
    admin_password = os.environ.get(ADMIN_PASSWORD_ENV) or None
    write_result(asyncio.run(
        _run_command(args.handler, args.access, settings, args, admin_password)))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run `groundstation …`; returns the exit status (0 ok, 1 failure, 2 usage)."""
    args = parse(argv)
    try:
        return _run(args)
    except AppError as error:
        return _fail(error.message)
    except SettingsError as error:
        return _fail(str(error))
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)
    except OSError as error:
        return _fail(_os_error_line(error))
    except Exception as error:  # the outermost boundary: one line, details only in DEBUG logs
        log.debug("command failed", exc_info=True)
        return _fail(f"unexpected failure: {error or 'no message'} "
                     "(GROUNDSTATION_LOG_LEVEL=DEBUG logs the details)")
