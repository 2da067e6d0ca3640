"""The CLI and the server write one SQLite file at once: no "database is locked" on either side,
and a command written by the CLI (another process) reaches a held long poll within 2 s."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from app.config import Settings
from app.main import create_app
from app.rest.context import RUNTIME_KEY
from tests.cli.conftest import Cli, CliResult, cli_environment, run_cli
from tests.fixtures.people import TokenFactory
from tests.fixtures.satellites import (
    SatelliteFactory,
    TestSatellite,
    satellite_factory,
    until_poll_held,
)
from tests.fixtures.server import eventually, make_settings

HEARTBEAT = {"status": "active", "system_metrics": {"cpu_usage_percent": 3, "memory_usage_mb": 99},
             "processes": [{"id": "proc-1", "server_name": "x", "status": "running",
                            "health_status": "healthy"}]}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Polls are paced by the test, not by the per-satellite limiter.
    return make_settings(tmp_path, poll_burst=100_000)


class Traffic:
    """Satellites heartbeating, polling, reporting results and registering, until stopped."""

    def __init__(self, http: aiohttp.ClientSession) -> None:
        self.http = http
        self.statuses: list[int] = []
        self.stopped = asyncio.Event()

    async def _send(self, method: str, path: str, headers: dict[str, str],
                    json: object = None) -> object:
        async with self.http.request(method, path, headers=headers, json=json) as response:
            self.statuses.append(response.status)
            return await response.json()

    async def satellite(self, satellite: TestSatellite) -> None:
        while not self.stopped.is_set():
            await self._send("POST", satellite.path("heartbeat"), satellite.headers, HEARTBEAT)
            answer = await self._send("GET", satellite.path("commands"), satellite.headers)
            assert isinstance(answer, dict)
            for command in answer.get("commands", []):
                await self._send("POST", satellite.path("command-result"), satellite.headers,
                                 {"command_id": command["id"], "status": "completed"})
            await asyncio.sleep(0.01)

    async def registrations(self, issue_token: TokenFactory) -> None:
        for number in itertools.count():
            if self.stopped.is_set():
                return
            token = (await issue_token()).token
            await self._send("POST", "/api/satellites/register",
                             {"Authorization": f"Bearer {token}"},
                             {"name": f"registered-under-load-{number:04d}"})


@pytest.mark.slow
async def test_cli_writes_while_the_server_is_busy_never_meet_a_locked_database(
    cli: Cli, http: aiohttp.ClientSession, make_satellite: SatelliteFactory,
    issue_token: TokenFactory, caplog: pytest.LogCaptureFixture,
) -> None:
    busy = [await make_satellite() for _ in range(4)]
    target = await make_satellite()
    traffic = Traffic(http)
    tasks = [asyncio.create_task(traffic.satellite(s)) for s in busy]
    tasks.append(asyncio.create_task(traffic.registrations(issue_token)))

    async def flowing() -> bool:
        return len(traffic.statuses) >= 20

    await eventually(flowing)  # the server is busy before the CLI starts writing

    waves = [
        [("satellite", "disable", target.id), ("token", "create", "--scope", "global"),
         ("command", "send", "--satellite", busy[0].id, "--type", "health_check")],
        [("command", "send", "--satellite", busy[1].id, "--type", "restart"),
         ("token", "create", "--scope", "global", "--name", "future-satellite"),
         ("command", "send", "--satellite", busy[2].id, "--type", "configure",
          "--priority", "immediate")],
        [("satellite", "enable", target.id), ("satellite", "rotate-key", target.id),
         ("command", "send", "--satellite", busy[3].id, "--type", "kill")],
    ]
    results: list[tuple[tuple[str, ...], CliResult]] = []
    try:
        for wave in waves:
            outcomes = await asyncio.gather(*(cli(*argv) for argv in wave))
            results.extend(zip(wave, outcomes, strict=True))
    finally:
        traffic.stopped.set()
        await asyncio.gather(*tasks)

    for argv, result in results:
        assert result.returncode == 0, (argv, result.stderr)
        assert "locked" not in result.stderr.lower()
    assert len(traffic.statuses) > 100, "the server was not kept busy"
    assert not [status for status in traffic.statuses if status >= 500]
    # Nor in the server's background work (the heartbeat flusher, jobs, refresh).
    assert not [record for record in caplog.records if "locked" in _text(record)]


def _text(record: logging.LogRecord) -> str:
    error = record.exc_info[1] if record.exc_info else None
    return f"{record.getMessage()} {error!r}".lower()


@pytest.fixture
async def refresh_at_default(tmp_path: Path) -> AsyncIterator[tuple[Settings, TestServer]]:
    """A server with the default cross-process refresh (1 s), the basis of the 2 s promise."""
    settings = make_settings(tmp_path, state_refresh_seconds=Settings().state_refresh_seconds)
    server = TestServer(create_app(settings), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield settings, server
    finally:
        await server.close()


async def test_a_command_sent_with_the_cli_reaches_a_held_long_poll_within_two_seconds(
    refresh_at_default: tuple[Settings, TestServer], tmp_path: Path
) -> None:
    settings, server = refresh_at_default
    rt = server.app[RUNTIME_KEY]
    satellite = await satellite_factory(rt)()
    async with aiohttp.ClientSession(base_url=str(server.make_url("/"))) as http:

        async def long_poll() -> dict[str, object]:
            async with http.get(satellite.path("commands"), params={"wait": "30"},
                                headers=satellite.headers) as response:
                assert response.status == 200
                answer: dict[str, object] = await response.json()
                return answer

        held = asyncio.create_task(long_poll())
        await until_poll_held(rt, satellite.id)
        assert not held.done(), "the poll should be held while nothing is queued"
        sent = await run_cli(cli_environment(settings), tmp_path, "command", "send",
                             "--satellite", satellite.id, "--type", "spawn")
        sent_at = time.monotonic()
        assert sent.returncode == 0, sent.stderr
        answer = await asyncio.wait_for(held, timeout=25)
        waited = time.monotonic() - sent_at

    commands = answer["commands"]
    assert isinstance(commands, list)
    assert [command["id"] for command in commands] == [sent.line]
    assert waited < 6  # 3x the 2 s guarantee
