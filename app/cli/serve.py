"""`groundstation serve`: migrate (unless `--no-migrate`), then serve until SIGINT/SIGTERM
(graceful shutdown).

The stop is bounded: in-flight requests get the shutdown timeout, the final
steps a few seconds each (`app.main`), and a thread that still runs after them
(a database driver's worker stuck on a lock) does not keep the process alive.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import threading
import time

from aiohttp import web
from yarl import URL

from app.cli.database import command_settings, prepared
from app.config import Settings
from app.gc_tuning import tune_for_long_lived_heap
from app.logs import configure_logging
from app.main import create_app, log_serving

log = logging.getLogger(__name__)

# How long threads still running after the server stopped may take to end.
THREAD_GRACE_SECONDS = 1.0

# Connections the kernel queues before the loop accepts them: after a restart, a fleet
# reconnects at once, and a full queue (aiohttp's default is 128) makes clients wait
# for SYN retries (1 s, 3 s, …). The kernel caps it at net.core.somaxconn.
LISTEN_BACKLOG = 4096
# run_app announces its bound sites as "======== Running on http://h:p ========".
_ANNOUNCED_URL = re.compile(r"Running on (\S+)")


def serve_command(args: argparse.Namespace) -> int:
    """`groundstation serve`: may create the database (and the default data directory)
    unless `--no-migrate`, which needs an existing, up-to-date one."""
    migrate = not args.no_migrate
    settings = prepared(command_settings(args), may_create=migrate)
    return serve(settings, args.host, args.port, migrate=migrate)


def serve(settings: Settings, host: str | None, port: int | None, *, migrate: bool = True
          ) -> int:
    """Serve the API; the URL is printed on stdout once the socket is bound. Without
    `migrate`, a schema that is behind stops the start (one line, exit 1)."""
    configure_logging(settings.log_level)
    host = host or settings.host
    port = settings.port if port is None else port
    configured_url = str(URL.build(scheme="http", host=host, port=port))

    app = create_app(settings, migrate=migrate)
    app.on_startup.append(_tune_gc)  # after start-up loaded the fleet

    def announce(message: str) -> None:
        # The announced name carries the bound port (useful with --port 0).
        found = _ANNOUNCED_URL.search(message)
        url = found.group(1) if found else configured_url
        print(url, flush=True)
        log_serving(app, url)

    web.run_app(
        app,
        host=host,
        port=port,
        shutdown_timeout=settings.shutdown_timeout_seconds,
        backlog=LISTEN_BACKLOG,
        print=announce,
    )
    _exit_if_threads_linger()
    return 0


async def _tune_gc(_app: web.Application) -> None:
    tune_for_long_lived_heap()


def _exit_if_threads_linger() -> None:
    """Give leftover non-daemon threads a moment, then exit without them (logged)."""
    deadline = time.monotonic() + THREAD_GRACE_SECONDS
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join(max(0.0, deadline - time.monotonic()))
    lingering = [thread.name for thread in threading.enumerate()
                 if thread is not threading.current_thread() and not thread.daemon
                 and thread.is_alive()]
    if lingering:
        log.error("shutdown: threads still running; exiting without them",
                  extra={"op": "shutdown", "threads": lingering})
        logging.shutdown()
        os._exit(0)
