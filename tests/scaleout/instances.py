"""Two real `groundstation serve` processes on one PostgreSQL and one Redis
(docs/operations.md §4),
and the client calls the multi-instance tests make against them.

Not a test module: the multi-instance test files import from here.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from tests.cli.conftest import ROOT, cli_environment, run_cli
from tests.fixtures.server import make_settings, with_channel_prefix
from tests.scaleout.conftest import POSTGRES_URL, REDIS_URL

needs_postgres_and_redis = pytest.mark.skipif(
    not (POSTGRES_URL.startswith(("postgres://", "postgresql://")) and REDIS_URL),
    reason="SKIPPED LOUDLY: multi-instance tests need PostgreSQL and Redis; set "
           "TEST_DATABASE_URL=postgres://… and TEST_REDIS_URL=redis://…",
)
PASSWORD = "multi-instance passphrase"
HEARTBEAT = {"status": "active", "system_metrics": {"cpu_usage_percent": 12.5,
                                                     "memory_usage_mb": 256},
             "processes": [], "error_count": 0, "version": "0.1.0"}
ENQUEUE = """mutation($id: ID!) { enqueueCommand(satelliteId: $id, commandType: HEALTH_CHECK,
  priority: IMMEDIATE, payload: {check_type: "connectivity"}) { id } }"""
# How much of a server's stderr an assertion message carries.
STDERR_TAIL_LINES = 20
# How long a server may take to print its URL (a loaded machine starts Python slowly).
START_SECONDS = 60.0
# Generous: only a failing test waits this long.
WAIT_SECONDS = 15.0


@dataclass
class Instance:
    url: str
    process: subprocess.Popen[str]
    stderr_path: Path

    def stderr_tail(self, lines: int = STDERR_TAIL_LINES) -> str:
        """The last lines the server wrote to stderr (for assertion messages)."""
        try:
            with self.stderr_path.open(encoding="utf-8", errors="replace") as stderr:
                tail = deque(stderr, maxlen=lines)
        except FileNotFoundError:
            return "(no stderr file)"
        return "".join(tail).rstrip() or "(stderr empty)"

    def describe_exit(self, code: int | None) -> str:
        return (f"exit {code}; last lines of {self.stderr_path.name}:\n"
                f"{self.stderr_tail()}")


def _stop(process: subprocess.Popen[str]) -> int:
    """SIGTERM (a graceful stop), SIGKILL if it does not exit in time; the exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            return process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


@asynccontextmanager
async def serving(env: dict[str, str], stderr_path: Path) -> AsyncIterator[Instance]:
    """`groundstation serve --port 0` with its stderr written to `stderr_path`.

    Fails with the server's last stderr lines when it prints no URL (within
    `START_SECONDS`), or when it exits with a non-zero status on its own (a signal
    sent by the test is not a failure). Blocking waits run in a thread, so the event
    loop (and whatever else the test runs on it) goes on meanwhile.
    """
    with stderr_path.open("w", encoding="utf-8") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", "0"], env=env, cwd=ROOT,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, text=True,
        )
    instance = Instance("", process, stderr_path)
    try:
        stdout = process.stdout
        assert stdout is not None
        try:
            # (On a timeout the thread's readline ends when _stop ends the process.)
            url = (await asyncio.wait_for(asyncio.to_thread(stdout.readline),
                                          START_SECONDS)).strip()
        except TimeoutError:
            url = ""
        if not url.startswith("http"):
            code = await asyncio.to_thread(_stop, process)
            raise AssertionError(f"the server printed no URL in {START_SECONDS:.0f} s "
                                 f"({instance.describe_exit(code)})")
        instance.url = url
        yield instance
    except BaseException:
        await asyncio.to_thread(_stop, process)
        raise
    crashed = process.poll()  # exited by itself while the test ran?
    code = await asyncio.to_thread(_stop, process)
    if crashed is not None and crashed > 0:
        raise AssertionError(f"the server at {url} exited unexpectedly "
                             f"({instance.describe_exit(crashed)})")
    if code > 0:
        raise AssertionError(f"the server at {url} failed to stop cleanly "
                             f"({instance.describe_exit(code)})")


@dataclass
class Cluster:
    a: Instance
    b: Instance
    env: dict[str, str]
    satellite_id: str
    api_key: str
    session: str
    # The instances' Redis key and channel prefix.
    prefix: str = ""

    @property
    def key_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


async def graphql(http: aiohttp.ClientSession, instance: Instance, session: str | None,
                  query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {session}"} if session else {}
    async with http.post(f"{instance.url}/graphql", json={"query": query, "variables": variables},
                         headers=headers) as response:
        result: dict[str, Any] = await response.json()
    assert "errors" not in result, result
    return result["data"]  # type: ignore[no-any-return]


async def _wait_ready(http: aiohttp.ClientSession, instance: Instance) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            async with http.get(f"{instance.url}/api/health") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        code = instance.process.poll()
        assert code is None, (
            f"the server exited before it was healthy ({instance.describe_exit(code)})")
        assert time.monotonic() < deadline, (
            f"instance not healthy in time; last lines of stderr:\n{instance.stderr_tail()}")
        await asyncio.sleep(0.1)


@asynccontextmanager
async def cluster(database_url: str, tmp_path: Path, **settings_env: str
                  ) -> AsyncIterator[tuple[Cluster, aiohttp.ClientSession]]:
    """Instances A and B on one database and one Redis channel prefix, an admin signed in
    (`Cluster.session`) and one registered satellite. `settings_env` adds environment
    variables for both instances (e.g. `GROUNDSTATION_POLL_BURST="4"`)."""
    settings = make_settings(tmp_path, database_url=database_url)
    prefix = f"gs-test-{secrets.token_hex(4)}"
    redis = with_channel_prefix(REDIS_URL, prefix)
    env = cli_environment(settings, REDIS_URL=redis, GROUNDSTATION_STATE_REFRESH_SECONDS="60",
                          GROUNDSTATION_LOG_LEVEL="WARNING", **settings_env)
    admin = await run_cli(env, tmp_path, "admin", "create", "--email", "ops@example.com",
                          "--password", PASSWORD)
    assert admin.returncode == 0, admin
    token = await run_cli(env, tmp_path, "token", "create", "--scope", "global")
    assert token.returncode == 0, token
    async with serving(env, tmp_path / "instance-a.stderr") as a, \
            serving(env, tmp_path / "instance-b.stderr") as b, aiohttp.ClientSession() as http:
        await _wait_ready(http, a)
        await _wait_ready(http, b)
        async with http.post(f"{a.url}/api/satellites/register", json={
                "name": "edge-satellite-1", "capabilities": []},
                headers={"Authorization": f"Bearer {token.line}"}) as response:
            assert response.status == 200, await response.text()
            registered = (await response.json())["satellite"]
        login = await graphql(http, a, None, """mutation($e: String!, $p: String!) {
                login(email: $e, password: $p) { token } }""",
                              {"e": "ops@example.com", "p": PASSWORD})
        yield Cluster(a, b, env, registered["id"], registered["api_key"],
                      login["login"]["token"], prefix), http


async def heartbeat(http: aiohttp.ClientSession, instance: Instance, c: Cluster,
                    key: str | None = None) -> int:
    """The status of one heartbeat from the cluster's satellite (or with `key`)."""
    headers = {"Authorization": f"Bearer {key or c.api_key}"}
    async with http.post(f"{instance.url}/api/satellites/{c.satellite_id}/heartbeat",
                         json=HEARTBEAT, headers=headers) as response:
        return response.status


async def poll(http: aiohttp.ClientSession, instance: Instance, c: Cluster,
               wait: float = 0) -> list[dict[str, Any]]:
    """One command poll by the cluster's satellite (must be answered 200)."""
    async with http.get(f"{instance.url}/api/satellites/{c.satellite_id}/commands",
                        params={"limit": "10", "wait": str(wait)},
                        headers=c.key_headers) as response:
        assert response.status == 200, await response.text()
        commands: list[dict[str, Any]] = (await response.json())["commands"]
        return commands


async def subscriptions(http: aiohttp.ClientSession, instance: Instance) -> float:
    """The instance's `groundstation_subscriptions` gauge (open subscriptions)."""
    async with http.get(f"{instance.url}/metrics") as response:
        assert response.status == 200, await response.text()
        text = await response.text()
    for line in text.splitlines():
        if line.startswith("groundstation_subscriptions "):
            return float(line.split()[1])
    raise AssertionError("no groundstation_subscriptions gauge in /metrics")


async def until_subscribed(http: aiohttp.ClientSession, instance: Instance,
                           before: float) -> None:
    """Wait until one more subscription is registered on the instance's bus."""
    deadline = time.monotonic() + WAIT_SECONDS
    while await subscriptions(http, instance) <= before:
        assert time.monotonic() < deadline, "the subscription was not registered in time"
        await asyncio.sleep(0.05)


async def poll_bucket_stamp(c: Cluster) -> bytes | str | None:
    """When an instance last took a token from the satellite's poll bucket (in Redis).

    Every poll takes one, on whichever instance it reaches, before the poll is held:
    a new stamp means an instance is handling a new poll. (There is no metric of held
    polls; this reads the limit store's bucket, `<prefix>limit:bucket:poll:<id>`.)
    """
    redis = Redis.from_url(REDIS_URL)
    try:
        stamp: bytes | str | None = await redis.hget(
            f"{c.prefix}limit:bucket:poll:{c.satellite_id}", "updated")
        return stamp
    finally:
        await redis.aclose()


async def until_poll_received(c: Cluster, before: bytes | str | None) -> None:
    """Wait until an instance is handling a poll started after `before` was read."""
    deadline = time.monotonic() + WAIT_SECONDS
    while await poll_bucket_stamp(c) == before:
        assert time.monotonic() < deadline, "no instance received the poll in time"
        await asyncio.sleep(0.05)
