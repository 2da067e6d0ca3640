"""`groundstation serve`'s own log lines on stderr (docs/operations.md §6): the start-up
line once the socket is bound, the debug warning, one access line per request, and the
shutdown lines; stdout still holds the URL alone."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp

from app.config import Settings
from app.version import VERSION
from tests.cli.conftest import cli_environment


async def test_serve_logs_its_start_its_requests_and_its_stop(
    settings: Settings, tmp_path: Path
) -> None:
    # On the PostgreSQL + Redis pass the server uses the test's Redis bus too.
    bus = {"REDIS_URL": settings.redis_url} if settings.redis_url else {}
    env = cli_environment(settings, GROUNDSTATION_DEBUG="true", **bus)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "serve", "--port", "0", env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        url = (await asyncio.wait_for(process.stdout.readline(), 30)).decode().strip()
        async with aiohttp.ClientSession() as http, http.get(
                f"{url}/api/health", headers={"X-Request-Id": "probe-1"}) as response:
            assert (await response.json())["version"] == VERSION
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), 30) == 0
    assert await process.stdout.read() == b""  # the URL alone on stdout
    lines: list[dict[str, Any]] = [
        json.loads(line) for line in (await process.stderr.read()).decode().splitlines()]
    by_message = {line["msg"]: line for line in lines}

    serving = by_message["serving"]
    assert serving["url"] == url
    assert serving["version"] == VERSION
    assert serving["database"] == settings.database_url
    assert serving["bus"] == ("redis" if settings.redis_url else "in-process")
    assert serving["instance_id"]
    debug = next(line for line in lines if "GROUNDSTATION_DEBUG" in line["msg"])
    assert debug["level"] == "warning"
    access = next(line for line in lines if line["logger"] == "app.access")
    assert access["route"] == "/api/health"
    assert access["status"] == 200
    assert access["request_id"] == "probe-1"
    begins, complete = by_message["shutdown begins"], by_message["shutdown complete"]
    assert begins["held_polls"] == 0
    assert begins["live_connections"] == 0
    assert complete["duration_ms"] >= 0
    assert begins["instance_id"] == complete["instance_id"] == serving["instance_id"]
    messages = [line["msg"] for line in lines]
    assert messages.index("serving") < messages.index("shutdown begins") \
        < messages.index("shutdown complete")
