"""`groundstation serve`: the URL alone on stdout at start, JSON logs on stderr, clean stop."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import sys
from pathlib import Path

import aiohttp

from app.config import Settings
from tests.cli.conftest import cli_environment


async def start_serve(settings: Settings, cwd: Path, *argv: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "serve", *argv, env=cli_environment(settings),
        cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )


async def test_serve_prints_the_url_serves_and_stops_gracefully_on_sigterm(
    settings: Settings, tmp_path: Path
) -> None:
    process = await start_serve(settings, tmp_path, "--host", "127.0.0.1", "--port", "0")
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        url = (await asyncio.wait_for(process.stdout.readline(), 30)).decode().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:[1-9]\d*", url), url
        async with aiohttp.ClientSession() as http, http.get(f"{url}/api/health") as response:
            assert response.status == 200
            assert await response.json() == {"status": "ok"}
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), 30) == 0
    assert await process.stdout.read() == b""  # stdout holds only the URL
    for line in (await process.stderr.read()).decode().splitlines():
        json.loads(line)  # every log line is one JSON object


async def test_serve_on_a_busy_port_fails_with_an_error_line(
    settings: Settings, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = await start_serve(settings, tmp_path, "--port", str(port))
        stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 1
    assert stdout == b""
    last_line = stderr.decode().strip().splitlines()[-1]
    assert last_line.startswith("error: ")
    assert str(port) in last_line
    assert b"Traceback" not in stderr
