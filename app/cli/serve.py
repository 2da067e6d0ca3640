"""`groundstation serve`: migrate, then serve until SIGINT/SIGTERM (graceful shutdown)."""

from __future__ import annotations

import re

from aiohttp import web
from yarl import URL

from app.config import Settings
from app.logs import configure_logging
from app.main import create_app

# run_app announces its bound sites as "======== Running on http://h:p ========".
_ANNOUNCED_URL = re.compile(r"Running on (\S+)")


def serve(settings: Settings, host: str | None, port: int | None) -> int:
    """Serve the API; the URL is printed on stdout once the socket is bound."""
    configure_logging(settings.log_level)
    host = host or settings.host
    port = settings.port if port is None else port
    configured_url = str(URL.build(scheme="http", host=host, port=port))

    def announce(message: str) -> None:
        # The announced name carries the bound port (useful with --port 0).
        found = _ANNOUNCED_URL.search(message)
        print(found.group(1) if found else configured_url, flush=True)

    web.run_app(
        create_app(settings),
        host=host,
        port=port,
        shutdown_timeout=settings.shutdown_timeout_seconds,
        print=announce,
    )
    return 0
