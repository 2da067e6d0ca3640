"""The entry point: parse, read settings once, run one command, report one line on failure."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from app.cli.commands import Handler, Invocation
from app.cli.parser import build_parser
from app.cli.serve import serve
from app.config import Settings, SettingsError, load_settings
from app.db import close_database, open_database
from app.errors import AppError
from app.logs import configure_logging
from app.runtime import build_runtime

log = logging.getLogger("app.cli")

ADMIN_PASSWORD_ENV = "GROUNDSTATION_ADMIN_PASSWORD"
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130


def _fail(message: str, code: int = EXIT_FAILURE) -> int:
    one_line = " ".join(message.split()) or "unknown error"
    print(f"error: {one_line}", file=sys.stderr, flush=True)
    return code


def _command_log_level(settings: Settings) -> str:
    """One-shot commands keep stderr quiet (warnings and up) unless DEBUG was asked for."""
    return "DEBUG" if settings.log_level.upper() == "DEBUG" else "WARNING"


async def _run_command(
    handler: Handler, settings: Settings, args: argparse.Namespace, admin_password: str | None
) -> str:
    """Migrate and open the database, run one handler, close everything again."""
    await open_database(settings)
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


def _write_result(text: str) -> None:
    try:
        print(text, flush=True)
    except BrokenPipeError:  # `groundstation satellites | head -1`: the reader left early
        # Python's documented recipe: no second error when stdout is flushed at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    """Run `groundstation …`; returns the exit status (0 ok, 1 failure, 2 usage)."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        if args.handler is None:
            return serve(settings, args.host, args.port)
        configure_logging(_command_log_level(settings))
        # The one read of this variable, here at start-up beside the settings.
        admin_password = os.environ.get(ADMIN_PASSWORD_ENV) or None
        result = asyncio.run(_run_command(args.handler, settings, args, admin_password))
    except AppError as error:
        return _fail(error.message)
    except SettingsError as error:
        return _fail(str(error))
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)
    except OSError as error:
        return _fail(str(error))
    except Exception as error:  # the outermost boundary: one line, details only in DEBUG logs
        log.debug("command failed", exc_info=True)
        return _fail(f"{type(error).__name__}: {error}")
    _write_result(result)
    return 0
