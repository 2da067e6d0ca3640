"""Two real `groundstation serve` processes on one PostgreSQL and one Redis behave like
one (issue 5, design.md §5). Needs TEST_DATABASE_URL (PostgreSQL) and TEST_REDIS_URL;
skipped loudly otherwise.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from tests.cli.conftest import ROOT, cli_environment, run_cli
from tests.fixtures.server import make_settings
from tests.scaleout.conftest import POSTGRES_URL, REDIS_URL

pytestmark = pytest.mark.skipif(
    not (POSTGRES_URL.startswith(("postgres://", "postgresql://")) and REDIS_URL),
    reason="SKIPPED LOUDLY: multi-instance tests need PostgreSQL and Redis; set "
           "TEST_DATABASE_URL=postgres://… and TEST_REDIS_URL=redis://…",
)
PASSWORD = "multi-instance passphrase"
HEARTBEAT = {"status": "active", "system_metrics": {"cpu_usage_percent": 12.5,
                                                     "memory_usage_mb": 256},
             "processes": [], "error_count": 0, "version": "0.1.0"}


@dataclass
class Instance:
    url: str
    process: subprocess.Popen[str]


@contextmanager
def serving(env: dict[str, str]) -> Iterator[Instance]:
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", "0"], env=env, cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http"), f"the server printed no URL (exit {process.poll()})"
        yield Instance(url, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Cluster:
    a: Instance
    b: Instance
    env: dict[str, str]
    satellite_id: str
    api_key: str
    session: str

    @property
    def key_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


async def _graphql(http: aiohttp.ClientSession, instance: Instance, session: str | None,
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
        assert time.monotonic() < deadline, "instance not healthy in time"
        await asyncio.sleep(0.1)


@asynccontextmanager
async def cluster(database_url: str, tmp_path: Any, **settings_env: str
                  ) -> AsyncIterator[tuple[Cluster, aiohttp.ClientSession]]:
    settings = make_settings(tmp_path, database_url=database_url)
    prefix = f"gs-test-{secrets.token_hex(4)}"
    redis = f"{REDIS_URL}{'&' if '?' in REDIS_URL else '?'}channel_prefix={prefix}"
    env = cli_environment(settings, REDIS_URL=redis, GROUNDSTATION_STATE_REFRESH_SECONDS="60",
                          GROUNDSTATION_LOG_LEVEL="WARNING", **settings_env)
    admin = await run_cli(env, tmp_path, "admin", "create", "--email", "ops@example.com",
                          "--password", PASSWORD)
    assert admin.returncode == 0, admin
    token = await run_cli(env, tmp_path, "token", "create", "--scope", "global")
    assert token.returncode == 0, token
    with serving(env) as a, serving(env) as b:
        async with aiohttp.ClientSession() as http:
            await _wait_ready(http, a)
            await _wait_ready(http, b)
            async with http.post(f"{a.url}/api/satellites/register", json={
                    "name": "edge-satellite-1", "capabilities": []},
                    headers={"Authorization": f"Bearer {token.line}"}) as response:
                assert response.status == 200, await response.text()
                registered = (await response.json())["satellite"]
            login = await _graphql(http, a, None, """mutation($e: String!, $p: String!) {
                login(email: $e, password: $p) { token } }""",
                                   {"e": "ops@example.com", "p": PASSWORD})
            yield Cluster(a, b, env, registered["id"], registered["api_key"],
                          login["login"]["token"]), http


async def _heartbeat(http: aiohttp.ClientSession, instance: Instance, c: Cluster,
                     key: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {key or c.api_key}"}
    async with http.post(f"{instance.url}/api/satellites/{c.satellite_id}/heartbeat",
                         json=HEARTBEAT, headers=headers) as response:
        return response.status


async def _poll(http: aiohttp.ClientSession, instance: Instance, c: Cluster,
                wait: float = 0) -> list[dict[str, Any]]:
    async with http.get(f"{instance.url}/api/satellites/{c.satellite_id}/commands",
                        params={"limit": "10", "wait": str(wait)},
                        headers=c.key_headers) as response:
        assert response.status == 200, await response.text()
        commands: list[dict[str, Any]] = (await response.json())["commands"]
        return commands


ENQUEUE = """mutation($id: ID!) { enqueueCommand(satelliteId: $id, commandType: HEALTH_CHECK,
  priority: IMMEDIATE, payload: {check_type: "connectivity"}) { id } }"""


async def test_a_command_is_delivered_once_to_a_satellite_polling_both(
    shared_database: str, tmp_path: Any
) -> None:
    async with cluster(shared_database, tmp_path) as (c, http):
        assert await _heartbeat(http, c.a, c) == 200
        created = await _graphql(http, c.a, c.session, ENQUEUE, {"id": c.satellite_id})
        command_id = created["enqueueCommand"]["id"]

        polls = await asyncio.gather(*[_poll(http, instance, c, wait=1)
                                       for instance in (c.a, c.b, c.a, c.b)])

        delivered = [command["id"] for poll in polls for command in poll]
        assert delivered == [command_id]


async def test_a_long_poll_on_b_wakes_for_a_command_created_through_a(
    shared_database: str, tmp_path: Any
) -> None:
    async with cluster(shared_database, tmp_path) as (c, http):
        assert await _heartbeat(http, c.b, c) == 200
        held = asyncio.create_task(_poll(http, c.b, c, wait=10))
        await asyncio.sleep(0.5)  # the poll is held on B
        started = time.monotonic()
        await _graphql(http, c.a, c.session, ENQUEUE, {"id": c.satellite_id})

        commands = await held
        assert len(commands) == 1
        assert time.monotonic() - started < 3.0  # the guarantee is 1 s; 3× for a busy machine


async def test_a_key_rotated_through_a_is_refused_by_b_at_once(
    shared_database: str, tmp_path: Any
) -> None:
    async with cluster(shared_database, tmp_path) as (c, http):
        assert await _heartbeat(http, c.b, c) == 200  # B has verified and cached the key
        rotated = await _graphql(http, c.a, c.session, """mutation($id: ID!) {
            rotateSatelliteKey(id: $id) { apiKey } }""", {"id": c.satellite_id})
        new_key = rotated["rotateSatelliteKey"]["apiKey"]

        assert await _heartbeat(http, c.b, c) == 401
        assert await _heartbeat(http, c.b, c, key=new_key) == 200


async def test_a_subscriber_on_b_sees_a_heartbeat_sent_to_a(
    shared_database: str, tmp_path: Any
) -> None:
    async with cluster(shared_database, tmp_path) as (c, http):
        assert await _heartbeat(http, c.a, c) == 200
        async with http.ws_connect(f"{c.b.url}/graphql",
                                   protocols=["graphql-transport-ws"]) as socket:
            await socket.send_json({"type": "connection_init",
                                    "payload": {"authToken": c.session}})
            assert (await socket.receive_json(timeout=5))["type"] == "connection_ack"
            await socket.send_json({"id": "1", "type": "subscribe", "payload": {
                "query": "subscription($id: ID!) { satelliteMetrics(satelliteId: $id) "
                         "{ satelliteId cpuUsagePercent } }",
                "variables": {"id": c.satellite_id}}})
            await asyncio.sleep(0.5)  # subscribed on B
            assert await _heartbeat(http, c.a, c) == 200

            message = await socket.receive_json(timeout=5)
        assert message["type"] == "next", json.dumps(message)
        assert message["payload"]["data"]["satelliteMetrics"] == {
            "satelliteId": c.satellite_id, "cpuUsagePercent": 12.5}


async def test_a_killed_instance_s_lease_is_redelivered_and_completes_once(
    shared_database: str, tmp_path: Any
) -> None:
    fast = {"GROUNDSTATION_COMMAND_LEASE_SECONDS": "2",
            "GROUNDSTATION_JOBS_INTERVAL_SECONDS": "0.5"}
    async with cluster(shared_database, tmp_path, **fast) as (c, http):
        assert await _heartbeat(http, c.a, c) == 200
        await _graphql(http, c.a, c.session, ENQUEUE, {"id": c.satellite_id})
        [first] = await _poll(http, c.a, c, wait=2)
        c.a.process.kill()  # kill -9 while the satellite holds the command's lease
        c.a.process.wait()

        redelivered: list[dict[str, Any]] = []
        deadline = time.monotonic() + 15
        while not redelivered:
            assert time.monotonic() < deadline, "the command was not redelivered after its lease"
            redelivered = await _poll(http, c.b, c, wait=1)
        [again] = redelivered
        assert (again["id"], again["attempt"]) == (first["id"], 2)

        for _ in range(2):  # the result, and a duplicate of it
            async with http.post(f"{c.b.url}/api/satellites/{c.satellite_id}/command-result",
                                 json={"command_id": first["id"], "status": "completed",
                                       "result": {"ok": True}},
                                 headers=c.key_headers) as response:
                assert response.status == 200
        command = await _graphql(http, c.b, c.session, """query($id: ID!) {
            command(id: $id) { status attempts } }""", {"id": first["id"]})
        assert command["command"] == {"status": "COMPLETED", "attempts": 2}
        assert await _poll(http, c.b, c) == []
