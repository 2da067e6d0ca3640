"""Two instances on one PostgreSQL and one Redis raise each alert once and deliver it
once (docs/alerts.md §2). Needs TEST_DATABASE_URL and TEST_REDIS_URL; skipped loudly
otherwise."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from tests.fixtures.alerts import CREATE_WEBHOOK, verified
from tests.fixtures.webhooks import Receiver
from tests.scaleout.instances import (
    Cluster,
    Instance,
    cluster,
    graphql,
    heartbeat,
    needs_postgres_and_redis,
)

pytestmark = needs_postgres_and_redis

# Offline after 2 s of silence, judged every 0.2 s; webhooks polled every 0.1 s.
FAST = {"GROUNDSTATION_HEARTBEAT_INTERVAL": "1", "GROUNDSTATION_OFFLINE_THRESHOLD": "2",
        "GROUNDSTATION_JOBS_INTERVAL_SECONDS": "0.2",
        "GROUNDSTATION_WEBHOOK_INTERVAL_SECONDS": "0.1",
        "GROUNDSTATION_WEBHOOK_ALLOW_PRIVATE": "true"}
ALERTS = """{ alerts { totalCount edges { node { rule state occurrences } } } }"""


async def crashes(http: aiohttp.ClientSession, instance: Instance, c: Cluster,
                  team_id: str, count: int) -> None:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    event = {"type": "mcp.server.crashed", "timestamp": now, "data": {
        "server_id": "inst-1", "server_slug": "files", "team_id": team_id, "process_id": count,
        "exit_code": 1, "signal": None, "uptime_seconds": 1, "crash_count": count,
        "will_restart": True}}
    async with http.post(f"{instance.url}/api/satellites/{c.satellite_id}/events",
                         json={"events": [event]},
                         headers={"Authorization": f"Bearer {c.api_key}"}) as response:
        assert response.status == 200, await response.text()
        assert (await response.json())["processed"] == 1


async def test_an_alert_is_raised_and_delivered_once_by_two_instances(
    shared_database: str, tmp_path: Path, receiver: Receiver
) -> None:
    async with cluster(shared_database, tmp_path, **FAST) as (c, http):
        created = await graphql(http, c.a, c.session, CREATE_WEBHOOK, {"url": receiver.url})
        secret = created["createWebhook"]["secret"]
        team = await graphql(http, c.a, c.session, """mutation {
            createTeam(name: "Ops", slug: "ops") { id } }""")
        team_id = team["createTeam"]["id"]
        assert await heartbeat(http, c.a, c) == 200
        assert await heartbeat(http, c.b, c) == 200

        # Silence: the satellite goes offline; one alert, one delivery.
        opened = verified(await receiver.next(), secret)
        assert (opened["event"], opened["alert"]["rule"]) == ("alert.opened",
                                                              "satellite_offline")
        # Crashes reported half through each instance: one crash-loop alert.
        for count in range(1, 7):
            await crashes(http, c.a if count % 2 else c.b, c, team_id, count)
        looped = verified(await receiver.next(), secret)
        assert looped["alert"]["rule"] == "process_crash_loop"
        assert await heartbeat(http, c.b, c) == 200
        resolved = verified(await receiver.next(), secret)
        assert (resolved["event"], resolved["alert"]["id"]) == ("alert.resolved",
                                                                opened["alert"]["id"])
        await asyncio.sleep(1.0)  # room for a duplicate from the other instance

        documents = [verified(item, secret) for item in receiver.delivered]
        transitions = [(document["event"], document["alert"]["id"]) for document in documents]
        assert len(transitions) == len(set(transitions))  # no transition delivered twice
        # (The satellite may go offline again meanwhile: a new alert, delivered after these.)
        assert [(document["event"], document["alert"]["rule"]) for document in documents[:3]
                ] == [("alert.opened", "satellite_offline"),
                      ("alert.opened", "process_crash_loop"),
                      ("alert.resolved", "satellite_offline")]
        for instance in (c.a, c.b):
            listed = await graphql(http, instance, c.session, ALERTS)
            nodes = [edge["node"] for edge in listed["alerts"]["edges"]]
            loops = [node for node in nodes if node["rule"] == "PROCESS_CRASH_LOOP"]
            assert [node["occurrences"] for node in loops] == [4]  # opened at the 3rd crash
            offline = [node for node in nodes if node["rule"] == "SATELLITE_OFFLINE"]
            assert offline[-1]["state"] == "RESOLVED"  # the first (list is newest first)
            assert all(node["occurrences"] == 1 for node in offline)
