"""Process upserts from heartbeats: attribution to installations and teams, stop detection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from app.main import create_app
from app.models import McpInstallation, McpServer, SatelliteProcess, Team
from app.models.enums import HealthStatus, ProcessStatus, SatelliteType, TransportType
from app.rest.context import RUNTIME_KEY
from app.runtime import Runtime
from app.services.fleet.processes import installation_id_in
from tests.fixtures.satellites import SatelliteFactory, TestSatellite, satellite_factory
from tests.fixtures.server import make_settings

Json = dict[str, Any]


async def send(
    http: aiohttp.ClientSession, satellite: TestSatellite, processes: list[Json] | None
) -> None:
    """One heartbeat carrying `processes` (the key omitted when None)."""
    body: Json = {"status": "active",
                  "system_metrics": {"cpu_usage_percent": 1, "memory_usage_mb": 1}}
    if processes is not None:
        body["processes"] = processes
    async with http.post(satellite.path("heartbeat"), data=json.dumps(body),
                         headers=satellite.headers) as response:
        assert response.status == 200


async def report(
    http: aiohttp.ClientSession, rt: Runtime, satellite: TestSatellite,
    processes: list[Json] | None,
) -> None:
    """One heartbeat, then a flush."""
    await send(http, satellite, processes)
    assert await rt.heartbeats.flush()


def running(process_id: str, server_name: str | None = None, **extra: Any) -> Json:
    return {"id": process_id, "server_name": server_name or process_id, "status": "running",
            "health_status": "healthy", **extra}


async def process(satellite: TestSatellite, process_id: str) -> SatelliteProcess:
    return await SatelliteProcess.get(satellite_id=satellite.id, process_id=process_id)


async def installation_of(team_slug: str, server_slug: str = "context7") -> McpInstallation:
    team = await Team.create(name=team_slug.title(), slug=team_slug)
    server = await McpServer.get_or_none(slug=server_slug) or await McpServer.create(
        slug=server_slug, name=server_slug.title(), transport_type=TransportType.STDIO,
        command="npx",
    )
    return await McpInstallation.create(team=team, server=server, name=f"{server_slug} for team")


def config_key(installation: McpInstallation, server_slug: str, team_slug: str) -> str:
    return f"{server_slug}-{team_slug}-{installation.id}"


async def test_unmatched_process_is_left_without_a_team(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, rt: Runtime
) -> None:
    satellite = await make_satellite(satellite_type=SatelliteType.GLOBAL)

    await report(http, rt, satellite, [running("http-proxy-context7-1732712345678", "context7")])

    row = await process(satellite, "http-proxy-context7-1732712345678")
    assert row.team_id is None  # type: ignore[attr-defined]
    assert row.installation_id is None
    assert await Team.filter(slug="global").count() == 0  # no fake "global" team (defect 7)


async def test_process_named_after_a_config_key_gets_its_installation_and_team(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, rt: Runtime
) -> None:
    installation = await installation_of("acme")
    satellite = await make_satellite(satellite_type=SatelliteType.GLOBAL)
    key = config_key(installation, "context7", "acme")

    await report(http, rt, satellite, [running("http-proxy-context7-1", key),
                                       running(key, "stdio-entry")])

    for process_id in ("http-proxy-context7-1", key):  # by server name, then by id
        row = await process(satellite, process_id)
        assert row.installation_id == installation.id
        assert row.team_id == installation.team_id  # type: ignore[attr-defined]


async def test_a_key_with_the_wrong_slugs_is_not_attributed(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, rt: Runtime
) -> None:
    installation = await installation_of("acme")
    satellite = await make_satellite(satellite_type=SatelliteType.GLOBAL)

    await report(http, rt, satellite, [
        running("p1", config_key(installation, "github", "acme")),
        running("p2", config_key(installation, "context7", "other")),
    ])

    for process_id in ("p1", "p2"):
        row = await process(satellite, process_id)
        assert row.team_id is None  # type: ignore[attr-defined]
        assert row.installation_id is None


async def test_team_satellite_is_never_given_another_teams_installation(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, rt: Runtime
) -> None:
    acme = await installation_of("acme")
    other_team = await Team.create(name="Other", slug="other")
    other_satellite = await make_satellite(satellite_type=SatelliteType.TEAM,
                                           team_id=other_team.id)
    own_satellite = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=acme.team_id)  # type: ignore[attr-defined]
    key = config_key(acme, "context7", "acme")

    await report(http, rt, other_satellite, [running("p", key)])
    await report(http, rt, own_satellite, [running("p", key)])

    assert (await process(other_satellite, "p")).team_id is None  # type: ignore[attr-defined]
    assert (await process(own_satellite, "p")).team_id == acme.team_id  # type: ignore[attr-defined]


async def test_installation_pinned_to_another_satellite_is_not_attributed(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, rt: Runtime
) -> None:
    installation = await installation_of("acme")
    pinned_to = await make_satellite(satellite_type=SatelliteType.GLOBAL)
    await McpInstallation.filter(id=installation.id).update(pinned_satellite_id=pinned_to.id)
    other = await make_satellite(satellite_type=SatelliteType.GLOBAL)
    key = config_key(installation, "context7", "acme")

    await report(http, rt, other, [running("p", key)])
    await report(http, rt, pinned_to, [running("p", key)])

    assert (await process(other, "p")).installation_id is None
    assert (await process(pinned_to, "p")).installation_id == installation.id


async def test_reported_process_is_updated_in_place(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, rt: Runtime
) -> None:
    satellite = await make_satellite()

    await report(http, rt, satellite, [{"id": "p", "server_name": "ctx", "status": "starting"}])
    await report(http, rt, satellite, [running(
        "p", "ctx", performance_metrics={"total_requests": 9, "avg_response_time_ms": 12.5})])

    rows = await SatelliteProcess.filter(satellite_id=satellite.id)
    assert len(rows) == 1
    assert rows[0].status is ProcessStatus.RUNNING
    assert rows[0].health_status is HealthStatus.HEALTHY
    assert rows[0].performance_metrics == {"total_requests": 9, "avg_response_time_ms": 12.5}
    assert rows[0].last_reported_at is not None


async def test_process_missing_from_three_heartbeats_is_stopped(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, rt: Runtime
) -> None:
    satellite = await make_satellite()
    await report(http, rt, satellite, [running("gone"), running("kept")])

    await report(http, rt, satellite, [running("kept")])
    await report(http, rt, satellite, None)  # no `processes` key: not a miss
    await report(http, rt, satellite, [running("kept")])
    assert (await process(satellite, "gone")).status is ProcessStatus.RUNNING
    assert (await process(satellite, "gone")).missed_heartbeats == 2

    await report(http, rt, satellite, [])  # an empty list is a miss

    gone = await process(satellite, "gone")
    assert gone.status is ProcessStatus.STOPPED
    assert (await process(satellite, "kept")).status is ProcessStatus.RUNNING


async def test_reporting_a_process_again_resets_its_missed_count(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, rt: Runtime
) -> None:
    satellite = await make_satellite()
    await report(http, rt, satellite, [running("flaky")])
    await report(http, rt, satellite, [])
    await report(http, rt, satellite, [])

    await report(http, rt, satellite, [running("flaky")])
    await report(http, rt, satellite, [])
    await report(http, rt, satellite, [])

    row = await process(satellite, "flaky")
    assert row.status is ProcessStatus.RUNNING
    assert row.missed_heartbeats == 2


async def test_misses_count_per_heartbeat_even_within_one_flush(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, flush_interval_seconds=3600)  # flushed only by the test
    app = create_app(settings)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        rt = app[RUNTIME_KEY]
        satellite = await satellite_factory(rt)()
        async with aiohttp.ClientSession(base_url=str(server.make_url("/"))) as http:
            await report(http, rt, satellite, [running("gone")])
            for _ in range(3):  # three heartbeats in one batch
                await send(http, satellite, [])
            assert rt.heartbeats.pending_history == 3
            assert await rt.heartbeats.flush()

        assert (await process(satellite, "gone")).status is ProcessStatus.STOPPED
    finally:
        await server.close()


async def test_an_unchanged_report_is_not_written_again_but_a_change_is(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, rt: Runtime
) -> None:
    satellite = await make_satellite()
    await report(http, rt, satellite, [running("steady"), running("busy")])
    first = {row.process_id: row.updated_at
             for row in await SatelliteProcess.filter(satellite_id=satellite.id)}

    await report(http, rt, satellite, [running("steady"), running(
        "busy", performance_metrics={"total_requests": 3})])

    after = {row.process_id: row.updated_at
             for row in await SatelliteProcess.filter(satellite_id=satellite.id)}
    assert after["steady"] == first["steady"]  # same report: no write
    assert after["busy"] > first["busy"]
    assert (await process(satellite, "busy")).performance_metrics == {"total_requests": 3}


async def test_a_lifecycle_event_is_not_hidden_by_an_unchanged_report(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, rt: Runtime
) -> None:
    installation = await installation_of("acme")
    key = config_key(installation, "context7", "acme")
    satellite = await make_satellite(satellite_type=SatelliteType.GLOBAL)
    await report(http, rt, satellite, [running(key)])
    crash = {"type": "mcp.server.crashed", "timestamp": "2026-01-02T03:04:05.000Z", "data": {
        "server_id": installation.id, "server_slug": "context7",
        "team_id": installation.team_id,  # type: ignore[attr-defined]
        "process_id": 4242, "exit_code": 1, "signal": None, "uptime_seconds": 30,
        "crash_count": 1, "will_restart": True}}
    async with http.post(satellite.path("events"), data=json.dumps({"events": [crash]}),
                         headers=satellite.headers) as response:
        assert (response.status, (await response.json())["processed"]) == (200, 1)
    assert (await process(satellite, key)).status is ProcessStatus.FAILED

    await report(http, rt, satellite, [running(key)])  # the same report as before the crash

    assert (await process(satellite, key)).status is ProcessStatus.RUNNING


def test_installation_id_is_read_from_the_end_of_a_config_key() -> None:
    installation_id = "0123456789abcdef0123456789abcdef"
    assert installation_id_in(f"context7-acme-{installation_id}") == installation_id
    assert installation_id_in(f"a-b-c-{installation_id}") == installation_id
    assert installation_id_in("http-proxy-context7-1732712345678") is None
    assert installation_id_in(f"context7-acme-{installation_id.upper()}") is None
    assert installation_id_in(None) is None
