"""Faults across two real `groundstation serve` processes on one PostgreSQL and one Redis
(docs/architecture.md §4, docs/protocol.md §8, §10): a satellite replaying what it sent to
the other instance, and one instance shutting down while the other serves on. Needs
TEST_DATABASE_URL (PostgreSQL) and TEST_REDIS_URL; skipped loudly otherwise.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from tests.fixtures.live import Subscription, live_socket
from tests.scaleout.instances import (
    ENQUEUE,
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

Json = dict[str, Any]
# The server's default `shutdown_timeout_seconds`: what aiohttp waits before cutting off.
SHUTDOWN_TIMEOUT = 10.0

EVENTS = """query($id: ID!) { satellite(id: $id) { events(first: 100) {
  totalCount edges { node { id type data } } } } }"""
USAGE = """query($team: ID!) { usage(teamId: $team) { totalCalls byTool { toolName calls } } }"""
COMMAND = """query($id: ID!) { command(id: $id) {
  status result errorMessage attempts late } }"""
COMMANDS = """query($id: ID!) { commands(satelliteId: $id) { totalCount } }"""
COMMAND_UPDATED = """subscription($id: ID!) { commandUpdated(satelliteId: $id) { id status } }"""
CANCEL = """mutation($id: ID!) { cancelCommand(id: $id) { id status } }"""
METRICS = """subscription($id: ID!) { satelliteMetrics(satelliteId: $id) { satelliteId } }"""


# ---- helpers of this file ----------------------------------------------------------


def _tool_call(client_id: str, team_id: str) -> Json:
    """An `mcp.tool.executed` event with a client id (its tool is named after the id)."""
    stamp = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"id": client_id, "type": "mcp.tool.executed", "timestamp": stamp,
            "data": {"tool_name": f"tool-{client_id}", "server_id": "search-server",
                     "team_id": team_id, "duration_ms": 40, "success": True}}


async def _post_events(http: aiohttp.ClientSession, instance: Instance, c: Cluster,
                       events: list[Json]) -> Json:
    async with http.post(f"{instance.url}/api/satellites/{c.satellite_id}/events",
                         json={"events": events}, headers=c.key_headers) as response:
        assert response.status == 200, await response.text()
        body: Json = await response.json()
        return body


async def _report(http: aiohttp.ClientSession, instance: Instance, c: Cluster,
                  result: Json) -> tuple[int, Json]:
    async with http.post(f"{instance.url}/api/satellites/{c.satellite_id}/command-result",
                         json=result, headers=c.key_headers) as response:
        body: Json = await response.json()
        return response.status, body


# ---- replayed event batches ----------------------------------------------------------


async def test_event_batches_replayed_across_instances_are_stored_once(
    shared_database: str, tmp_path: Path
) -> None:
    async with cluster(shared_database, tmp_path) as (c, http):
        created = await graphql(http, c.a, c.session, """mutation {
            createTeam(name: "Search team", slug: "search-team") { id } }""")
        team_id = created["createTeam"]["id"]
        batch = [_tool_call(client_id, team_id) for client_id in ("evt-1", "evt-2", "evt-3")]

        first = await _post_events(http, c.a, c, batch)
        assert (first["processed"], first["failed"]) == (3, 0), first
        ids: list[str] = first["event_ids"]
        assert len(set(ids)) == 3
        # The same batch again, to the other instance and back to the first: acknowledged
        # with the ids the events got the first time, counted as processed, no failures.
        for instance in (c.b, c.a):
            replay = await _post_events(http, instance, c, batch)
            assert replay == {"success": True, "processed": 3, "failed": 0,
                              "event_ids": ids}, replay

        # One new batch sent to both instances at once (a client retrying on a timeout).
        raced = [_tool_call(client_id, team_id) for client_id in ("evt-4", "evt-5")]
        on_a, on_b = await asyncio.gather(_post_events(http, c.a, c, raced),
                                          _post_events(http, c.b, c, raced))
        assert on_a == on_b, (on_a, on_b)
        assert (on_a["processed"], on_a["failed"]) == (2, 0), on_a
        raced_ids: list[str] = on_a["event_ids"]

        # Replayed and new events mixed: only the new ones are stored.
        mixed = [batch[1], _tool_call("evt-6", team_id), raced[0], _tool_call("evt-7", team_id)]
        answer = await _post_events(http, c.b, c, mixed)
        assert (answer["processed"], answer["failed"]) == (4, 0), answer
        mixed_ids: list[str] = answer["event_ids"]
        assert (mixed_ids[0], mixed_ids[2]) == (ids[1], raced_ids[0])
        new_ids = {mixed_ids[1], mixed_ids[3]}
        assert len(new_ids) == 2
        assert not new_ids & {*ids, *raced_ids}

        # What the admin sees: every event once, with the id it was acknowledged with …
        seen = await graphql(http, c.b, c.session, EVENTS, {"id": c.satellite_id})
        events = seen["satellite"]["events"]
        stored = {edge["node"]["id"]: edge["node"]["data"]["tool_name"]
                  for edge in events["edges"]}
        assert events["totalCount"] == 7
        assert stored == {
            ids[0]: "tool-evt-1", ids[1]: "tool-evt-2", ids[2]: "tool-evt-3",
            raced_ids[0]: "tool-evt-4", raced_ids[1]: "tool-evt-5",
            mixed_ids[1]: "tool-evt-6", mixed_ids[3]: "tool-evt-7",
        }
        # … and its effects applied once: one usage row per tool call.
        usage = (await graphql(http, c.a, c.session, USAGE, {"team": team_id}))["usage"]
        assert usage["totalCalls"] == 7
        assert sorted((tool["toolName"], tool["calls"]) for tool in usage["byTool"]) == [
            (f"tool-evt-{number}", 1) for number in range(1, 8)]


# ---- duplicate command results -------------------------------------------------------


async def test_a_result_reported_again_to_the_other_instance_completes_the_command_once(
    shared_database: str, tmp_path: Path
) -> None:
    async with cluster(shared_database, tmp_path) as (c, http):
        assert await heartbeat(http, c.a, c) == 200
        async with aiohttp.ClientSession(base_url=c.b.url) as to_b, \
                live_socket(to_b, token=c.session) as socket:
            # Subscribed on B before the command exists: every update of it is seen, in
            # order, whenever Redis brings A's messages.
            before = await subscriptions(http, c.b)
            updates = Subscription(socket, await socket.subscribe(
                COMMAND_UPDATED, {"id": c.satellite_id}))
            await until_subscribed(http, c.b, before)
            # A warm-up command (enqueued and cancelled on A) seen on B proves A reaches B.
            # Each update is rendered from the command's row when B reads it, so the
            # warm-up's first message may already show CANCELLED (and a second follows).
            warm = await graphql(http, c.a, c.session, ENQUEUE, {"id": c.satellite_id})
            warm_id = warm["enqueueCommand"]["id"]
            await graphql(http, c.a, c.session, CANCEL, {"id": warm_id})
            while (await updates.next())["commandUpdated"] != {"id": warm_id,
                                                                 "status": "CANCELLED"}:
                pass
            created = await graphql(http, c.a, c.session, ENQUEUE, {"id": c.satellite_id})
            command_id = created["enqueueCommand"]["id"]
            [delivered] = await poll(http, c.a, c, wait=2)
            assert delivered["id"] == command_id

            completed = {"command_id": command_id, "status": "completed",
                         "result": {"ok": True, "latency_ms": 12}}
            assert await _report(http, c.a, c, completed) == (200, {
                "success": True, "status": "completed", "message": "Command result recorded"})
            # The satellite reports again (to B), then a conflicting outcome, then once more
            # to A: the first terminal result stands.
            status, again = await _report(http, c.b, c, completed)
            assert (status, again["duplicate"], again["status"]) == (200, True, "completed")
            status, conflict = await _report(http, c.b, c, {
                "command_id": command_id, "status": "failed", "error": "boom"})
            assert (status, conflict["error"]) == (409, "invalid_transition"), conflict
            status, different = await _report(http, c.b, c, {
                "command_id": command_id, "status": "completed", "result": {"ok": False}})
            assert status in (200, 409), different  # either way it changes nothing
            status, last = await _report(http, c.a, c, completed)
            assert (status, last["duplicate"], last["status"]) == (200, True, "completed")

            # What a user sees: one command, completed once, with the first result.
            command = await graphql(http, c.b, c.session, COMMAND, {"id": command_id})
            assert command["command"] == {"status": "COMPLETED",
                                          "result": {"ok": True, "latency_ms": 12},
                                          "errorMessage": None, "attempts": 1, "late": False}
            listed = await graphql(http, c.a, c.session, COMMANDS, {"id": c.satellite_id})
            assert listed["commands"]["totalCount"] == 2  # the cancelled warm-up and this one
            # One update on the live stream: the next one is for a command created after
            # all the reports (A publishes it after B answered them).
            sentinel = await graphql(http, c.a, c.session, ENQUEUE, {"id": c.satellite_id})
            sentinel_id = sentinel["enqueueCommand"]["id"]
            seen: list[tuple[str, str]] = []
            while not seen or seen[-1][0] != sentinel_id:
                update = (await updates.next())["commandUpdated"]
                if update["id"] != warm_id:  # the warm-up's second update may still come
                    seen.append((update["id"], update["status"]))
        # One update per change A made (created, delivered, completed) and none for the
        # repeated reports. Each shows the row as B read it on arrival, so an early
        # one may already show a later state, never an earlier one.
        order = ["PENDING", "ACKNOWLEDGED", "COMPLETED"]
        statuses = [status for update_id, status in seen if update_id == command_id]
        logs = f"A's log:\n{c.a.stderr_tail()}\nB's log:\n{c.b.stderr_tail()}"
        assert len(statuses) == 3, (seen, logs)
        assert statuses[-1] == "COMPLETED", (seen, logs)
        assert statuses == sorted(statuses, key=order.index), (seen, logs)
        assert seen[3:] == [(sentinel_id, "PENDING")], (seen, logs)


# ---- graceful shutdown ---------------------------------------------------------------


async def test_stopping_b_answers_its_held_poll_closes_its_subscriptions_and_a_serves_on(
    shared_database: str, tmp_path: Path
) -> None:
    async with cluster(shared_database, tmp_path) as (c, http):
        assert await heartbeat(http, c.a, c) == 200
        assert await heartbeat(http, c.b, c) == 200
        async with aiohttp.ClientSession(base_url=c.b.url) as to_b, \
                live_socket(to_b, token=c.session) as socket:
            before = await subscriptions(http, c.b)
            metrics = Subscription(socket, await socket.subscribe(
                METRICS, {"id": c.satellite_id}))
            await until_subscribed(http, c.b, before)
            assert await heartbeat(http, c.a, c) == 200
            assert (await metrics.next())["satelliteMetrics"] == {
                "satelliteId": c.satellite_id}  # the subscription on B is live

            stamp = await poll_bucket_stamp(c)
            held = asyncio.create_task(poll(http, c.b, c, wait=25))
            await until_poll_received(c, stamp)  # the poll is held on B
            assert not held.done()
            c.b.process.send_signal(signal.SIGTERM)
            stopping = time.monotonic()

            # The held poll is answered (empty), not cut off when the timeout runs out (nor
            # answered at the end of its 25 s wait).
            assert await asyncio.wait_for(held, SHUTDOWN_TIMEOUT + 5) == []
            assert time.monotonic() - stopping < SHUTDOWN_TIMEOUT
            # The subscription's socket is closed by the server (going away), not dropped.
            assert await socket.closed_with() in (1000, 1001)

        try:
            code = await asyncio.to_thread(c.b.process.wait, SHUTDOWN_TIMEOUT + 5)
        except subprocess.TimeoutExpired as error:
            raise AssertionError("B did not exit after SIGTERM") from error
        assert code == 0

        # A serves on: a command created through A now is delivered by A.
        assert await heartbeat(http, c.a, c) == 200
        created = await graphql(http, c.a, c.session, ENQUEUE, {"id": c.satellite_id})
        delivered = await poll(http, c.a, c, wait=20)
        assert [command["id"] for command in delivered] == [created["enqueueCommand"]["id"]]
