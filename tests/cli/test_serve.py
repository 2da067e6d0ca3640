"""`groundstation serve`: the URL alone on stdout at start, JSON logs on stderr, clean stop."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import sqlite3
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from app.config import Settings
from tests.cli.conftest import cli_environment, run_cli


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
            assert (await response.json())["status"] == "ok"
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


async def _register(http: aiohttp.ClientSession, url: str, env: dict[str, str], cwd: Path
                    ) -> tuple[str, str]:
    token = (await run_cli(env, cwd, "token", "create", "--scope", "global")).line
    async with http.post(f"{url}/api/satellites/register", json={"name": "stuck-satellite"},
                         headers={"Authorization": f"Bearer {token}"}) as response:
        satellite = (await response.json())["satellite"]
    return satellite["id"], satellite["api_key"]


@pytest.mark.sqlite_only(reason="another process holds the SQLite file's write lock")
async def test_a_locked_database_cannot_hold_up_the_stop(
    settings: Settings, tmp_path: Path
) -> None:
    """Clients killed mid-request and a database that stays locked: SIGTERM still ends the
    process within the shutdown timeout plus a few seconds (the unwritten heartbeats are
    logged, not waited for)."""
    timeout = 1.0
    env = cli_environment(settings, GROUNDSTATION_SHUTDOWN_TIMEOUT_SECONDS=str(timeout))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "serve", "--port", "0", env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    assert process.stderr is not None
    assert settings.sqlite_path is not None
    locker = sqlite3.connect(settings.sqlite_path, isolation_level=None)
    try:
        url = (await asyncio.wait_for(process.stdout.readline(), 30)).decode().strip()
        async with aiohttp.ClientSession() as http:
            satellite_id, key = await _register(http, url, env, tmp_path)
            locker.execute("BEGIN EXCLUSIVE")  # held until the process is gone
            heartbeat = {"status": "active",
                         "system_metrics": {"cpu_usage_percent": 3, "memory_usage_mb": 9}}
            async with http.post(f"{url}/api/satellites/{satellite_id}/heartbeat",
                                 json=heartbeat, headers={"Authorization": f"Bearer {key}"}
                                 ) as response:
                assert response.status == 200  # answered from memory
            host, port = url.removeprefix("http://").split(":")
            for _ in range(5):  # clients that hang up in the middle of their request
                _, writer = await asyncio.open_connection(host, int(port))
                writer.write(f"POST /api/satellites/{satellite_id}/heartbeat HTTP/1.1\r\n"
                             f"Host: {host}\r\nAuthorization: Bearer {key}\r\n"
                             "Content-Length: 500\r\n\r\n{\"status\": ".encode())
                await writer.drain()
                writer.transport.abort()
            await asyncio.sleep(1.5)  # the flusher is now waiting on the lock

        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
        assert time.monotonic() - started < timeout + 12  # bounded (about +5 s by design)
    finally:
        if process.returncode is None:
            process.kill()
        locker.close()
    logs = [json.loads(line) for line in (await process.stderr.read()).decode().splitlines()]
    assert any(entry["msg"] == "shutdown: buffered heartbeats were not written"
               for entry in logs)
