"""Two real `groundstation serve` processes on one PostgreSQL and one Redis behave like
one (issue 5, docs/architecture.md §4). Needs TEST_DATABASE_URL (PostgreSQL) and TEST_REDIS_URL;
skipped loudly otherwise.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp

from app.auth.api_keys import generate_api_key
from app.models.enums import SatelliteType
from tests.scaleout.instances import (
    ENQUEUE,
    HEARTBEAT,
    WAIT_SECONDS,
    Cluster,
    Instance,
    cluster,
    graphql,
    heartbeat,
    needs_postgres_and_redis,
    poll,
    poll_bucket_stamp,
    subscriptions,
    until_poll_received,
    until_subscribed,
)

pytestmark = needs_postgres_and_redis


async def test_a_command_is_delivered_once_to_a_satellite_polling_both(
    shared_database: str, tmp_path: Path
) -> None:
    async with cluster(shared_database, tmp_path) as (c, http):
        assert await heartbeat(http, c.a, c) == 200
        created = await graphql(http, c.a, c.session, ENQUEUE, {"id": c.satellite_id})
        command_id = created["enqueueCommand"]["id"]

        polls = await asyncio.gather(*[poll(http, instance, c, wait=1)
                                       for instance in (c.a, c.b, c.a, c.b)])

        delivered = [command["id"] for poll in polls for command in poll]
        assert delivered == [command_id]


async def test_a_long_poll_on_b_wakes_for_a_command_created_through_a(
    shared_database: str, tmp_path: Path
) -> None:
    async with cluster(shared_database, tmp_path) as (c, http):
        assert await heartbeat(http, c.b, c) == 200
        before = await poll_bucket_stamp(c)
        held = asyncio.create_task(poll(http, c.b, c, wait=30))
        await until_poll_received(c, before)  # the poll is held on B
        assert not held.done()
        started = time.monotonic()
        await graphql(http, c.a, c.session, ENQUEUE, {"id": c.satellite_id})

        commands = await asyncio.wait_for(held, WAIT_SECONDS)
        assert len(commands) == 1
        # The guarantee is 1 s (B's own refresh would take 60 s, the wait 30 s): 10× for a
        # busy machine.
        assert time.monotonic() - started <= 10.0


async def test_a_key_rotated_through_a_is_refused_by_b_at_once(
    shared_database: str, tmp_path: Path
) -> None:
    async with cluster(shared_database, tmp_path) as (c, http):
        assert await heartbeat(http, c.b, c) == 200  # B has verified and cached the key
        rotated = await graphql(http, c.a, c.session, """mutation($id: ID!) {
            rotateSatelliteKey(id: $id) { apiKey } }""", {"id": c.satellite_id})
        new_key = rotated["rotateSatelliteKey"]["apiKey"]

        # B hears of it through Redis (its refresh takes 60 s, its key cache an hour): as
        # soon as the message arrives, within a few seconds on the busiest machine.
        deadline = time.monotonic() + 10
        while (status := await heartbeat(http, c.b, c)) == 200:
            assert time.monotonic() < deadline, "B still accepts the old key"
            await asyncio.sleep(0.05)
        assert status == 401
        assert await heartbeat(http, c.b, c, key=new_key) == 200


async def test_a_subscriber_on_b_sees_a_heartbeat_sent_to_a(
    shared_database: str, tmp_path: Path
) -> None:
    async with cluster(shared_database, tmp_path) as (c, http):
        assert await heartbeat(http, c.a, c) == 200
        async with http.ws_connect(f"{c.b.url}/graphql",
                                   protocols=["graphql-transport-ws"]) as socket:
            await socket.send_json({"type": "connection_init",
                                    "payload": {"authToken": c.session}})
            assert (await socket.receive_json(timeout=WAIT_SECONDS))["type"] == "connection_ack"
            before = await subscriptions(http, c.b)
            await socket.send_json({"id": "1", "type": "subscribe", "payload": {
                "query": "subscription($id: ID!) { satelliteMetrics(satelliteId: $id) "
                         "{ satelliteId cpuUsagePercent } }",
                "variables": {"id": c.satellite_id}}})
            await until_subscribed(http, c.b, before)
            assert await heartbeat(http, c.a, c) == 200

            message = await socket.receive_json(timeout=WAIT_SECONDS)
        assert message["type"] == "next", json.dumps(message)
        assert message["payload"]["data"]["satelliteMetrics"] == {
            "satelliteId": c.satellite_id, "cpuUsagePercent": 12.5}


async def test_a_killed_instance_s_lease_is_redelivered_and_completes_once(
    shared_database: str, tmp_path: Path
) -> None:
    fast = {"GROUNDSTATION_COMMAND_LEASE_SECONDS": "2",
            "GROUNDSTATION_JOBS_INTERVAL_SECONDS": "0.5"}
    async with cluster(shared_database, tmp_path, **fast) as (c, http):
        assert await heartbeat(http, c.a, c) == 200
        await graphql(http, c.a, c.session, ENQUEUE, {"id": c.satellite_id})
        [first] = await poll(http, c.a, c, wait=2)
        c.a.process.kill()  # kill -9 while the satellite holds the command's lease
        c.a.process.wait()

        redelivered: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        while not redelivered:
            assert time.monotonic() < deadline, "the command was not redelivered after its lease"
            redelivered = await poll(http, c.b, c, wait=1)
        [again] = redelivered
        assert (again["id"], again["attempt"]) == (first["id"], 2)

        for _ in range(2):  # the result, and a duplicate of it
            async with http.post(f"{c.b.url}/api/satellites/{c.satellite_id}/command-result",
                                 json={"command_id": first["id"], "status": "completed",
                                       "result": {"ok": True}},
                                 headers=c.key_headers) as response:
                assert response.status == 200
        command = await graphql(http, c.b, c.session, """query($id: ID!) {
            command(id: $id) { status attempts } }""", {"id": first["id"]})
        assert command["command"] == {"status": "COMPLETED", "attempts": 2}
        assert await poll(http, c.b, c) == []


async def _call(http: aiohttp.ClientSession, instance: Instance, c: Cluster, route: str,
                key: str) -> tuple[int, dict[str, Any], str | None]:
    """A poll (`commands`) or a heartbeat with `key`: status, body and Retry-After."""
    url = f"{instance.url}/api/satellites/{c.satellite_id}/{route}"
    headers = {"Authorization": f"Bearer {key}"}
    request = (http.get(url, headers=headers) if route == "commands"
               else http.post(url, json=HEARTBEAT, headers=headers))
    async with request as response:
        body: dict[str, Any] = await response.json()
        return response.status, body, response.headers.get("Retry-After")


BURSTS = """query { auditLog(first: 100) { edges { node { action actor { address } } } } }"""


async def test_rate_limits_are_shared_by_the_instances(
    shared_database: str, tmp_path: Path
) -> None:
    limits = {"GROUNDSTATION_POLL_BURST": "4", "GROUNDSTATION_POLL_RATE_PER_SECOND": "0.01",
              "GROUNDSTATION_AUTH_FAILURE_LIMIT": "3"}
    async with cluster(shared_database, tmp_path, **limits) as (c, http):
        for instance in (c.a, c.b):  # the key is verified (and cached) on both instances
            assert await heartbeat(http, instance, c) == 200

        # Polls: one budget of 4 for the satellite, spent alternately on A and B …
        for instance in (c.a, c.b, c.a, c.b):
            status, body, _ = await _call(http, instance, c, "commands", c.api_key)
            assert status == 200, body
        # … so the 5th poll is refused whichever instance it reaches (each instance has
        # answered only 2 of the 4 its own bucket would allow).
        for instance in (c.a, c.b):
            status, body, retry_after = await _call(http, instance, c, "commands", c.api_key)
            assert status == 429, body
            assert body["success"] is False
            assert "rate limit" in body["error"], body
            assert retry_after is not None
            assert 1 <= int(retry_after) <= 100  # the next token, at 0.01 per second
        for instance in (c.a, c.b):  # heartbeats are never rate limited for a valid key
            assert await heartbeat(http, instance, c) == 200

        # Failed authentications from one address (127.0.0.1), 2 on A and 2 on B: the 4th
        # is more than the limit of 3 only when both instances count together.
        for instance in (c.a, c.b, c.a, c.b):
            stranger, _ = generate_api_key(SatelliteType.GLOBAL)
            status, body, _ = await _call(http, instance, c, "heartbeat", stranger)
            assert (status, body["error"]) == (401, "unauthorized"), body
        # Now any unverified key from that address is refused on either instance, before
        # its hash is checked (heartbeats have no per-satellite limit: this is the
        # address's limit).
        for instance in (c.a, c.b):
            stranger, _ = generate_api_key(SatelliteType.GLOBAL)
            status, body, retry_after = await _call(http, instance, c, "heartbeat", stranger)
            assert status == 429, body
            assert "rate limit" in body["error"], body
            assert retry_after is not None
            assert 1 <= int(retry_after) <= 60  # the rest of the one-minute window
        # The satellite's own key, already verified, keeps working (fleets share NAT).
        for instance in (c.a, c.b):
            assert await heartbeat(http, instance, c) == 200
        # And the burst is one security event, not one per instance.
        log = await graphql(http, c.b, c.session, BURSTS)
        bursts = [edge["node"]["actor"]["address"] for edge in log["auditLog"]["edges"]
                  if edge["node"]["action"] == "security.auth_failure_burst"]
        assert bursts == ["127.0.0.1"]
