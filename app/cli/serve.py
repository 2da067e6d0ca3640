"""`groundstation serve`: migrate, then serve until SIGINT/SIGTERM (graceful shutdown).

The stop is bounded: in-flight requests get the shutdown timeout, the final
steps a few seconds each (`app.main`), and a thread that still runs after them
(a database driver's worker stuck on a lock) does not keep the process alive.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time

from aiohttp import web
from yarl import URL

from app.config import Settings
from app.logs import configure_logging
from app.main import create_app, log_serving

log = logging.getLogger(__name__)

# How long threads still running after the server stopped may take to end.
THREAD_GRACE_SECONDS = 1.0

# run_app announces its bound sites as "======== Running on http://h:p ========".
_ANNOUNCED_URL = re.compile(r"Running on (\S+)")


def serve(settings: Settings, host: str | None, port: int | None) -> int:
    """Serve the API; the URL is printed on stdout once the socket is bound."""
    configure_logging(settings.log_level)
    host = host or settings.host
    port = settings.port if port is None else port
    configured_url = str(URL.build(scheme="http", host=host, port=port))

    app = create_app(settings)

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
        print=announce,
    )
    _exit_if_threads_linger()
    return 0


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
