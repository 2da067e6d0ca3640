"""Heartbeat over real HTTP (docs/protocol.md §6, §13; defect 3): repaired, answered from memory."""

from __future__ import annotations

import asyncio
import http.client
import json
import math
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from tortoise import connections

from app.models import Satellite, SatelliteHeartbeat, SatelliteProcess
from app.models.enums import (
    HealthStatus,
    ProcessStatus,
    ReportedStatus,
    SatelliteStatus,
)
from app.runtime import Runtime
from tests.fixtures.queries import in_background_task
from tests.fixtures.satellites import SatelliteFactory, TestSatellite, satellite_factory
from tests.fixtures.server import eventually, make_settings, running
from tests.fixtures.threaded import ThreadedServer

Json = dict[str, Any]


def heartbeat_body(**overrides: Any) -> Json:
    body: Json = {
        "status": "active",
        "system_metrics": {"cpu_usage_percent": 12.5, "memory_usage_mb": 256},
        "processes": [],
        "error_count": 0,
        "version": "1.2.3",
    }
    body.update(overrides)
    return body


async def send(
    http: aiohttp.ClientSession, satellite: TestSatellite, body: Any, raw: bytes | None = None
) -> tuple[int, Json]:
    data = raw if raw is not None else json.dumps(body).encode()
    async with http.post(satellite.path("heartbeat"), data=data,
                         headers=satellite.headers) as response:
        return response.status, await response.json()


# ---- activation and administrative status -----------------------------------

async def test_first_heartbeat_activates_a_new_satellite(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, rt: Runtime
) -> None:
    satellite = await make_satellite(active=False)
    assert (await Satellite.get(id=satellite.id)).status is SatelliteStatus.INACTIVE

    status, answer = await send(http, satellite, heartbeat_body())

    assert status == 200
    assert answer["success"] is True
    assert answer["message"] == "heartbeat recorded"
    assert answer["server_time"].endswith("Z")
    assert answer["heartbeat_interval"] == rt.settings.heartbeat_interval
    assert (await Satellite.get(id=satellite.id)).status is SatelliteStatus.ACTIVE
    state = rt.fleet.get(satellite.id)
    assert state is not None
    assert state.status is SatelliteStatus.ACTIVE
    assert state.online


async def test_heartbeats_never_take_a_satellite_out_of_maintenance(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, rt: Runtime
) -> None:
    satellite = await make_satellite(active=False)
    await rt.fleet.apply_admin_change(satellite.id, "test", status=SatelliteStatus.MAINTENANCE)

    for _ in range(3):
        status, _ = await send(http, satellite, heartbeat_body())
        assert status == 200
    await rt.heartbeats.flush()

    row = await Satellite.get(id=satellite.id)
    assert row.status is SatelliteStatus.MAINTENANCE
    assert row.last_heartbeat_at is not None  # the heartbeats were recorded all the same
    state = rt.fleet.get(satellite.id)
    assert state is not None
    assert state.status is SatelliteStatus.MAINTENANCE


async def test_disabled_satellite_heartbeat_is_refused_and_stays_disabled(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, rt: Runtime
) -> None:
    satellite = await make_satellite()
    await rt.fleet.apply_admin_change(satellite.id, "test", status=SatelliteStatus.DISABLED)

    status, answer = await send(http, satellite, heartbeat_body())

    assert status == 401
    assert "unauthorized" in answer["error"]
    assert (await Satellite.get(id=satellite.id)).status is SatelliteStatus.DISABLED


# ---- repair instead of refuse -----------------------------------------------

async def test_cpu_above_100_percent_is_clamped_and_accepted(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, rt: Runtime
) -> None:
    satellite = await make_satellite(active=False)
    body = heartbeat_body(system_metrics={"cpu_usage_percent": 250, "memory_usage_mb": -5,
                                          "disk_usage_percent": 140})

    status, _ = await send(http, satellite, body)
    await rt.heartbeats.flush()

    assert status == 200
    row = await Satellite.get(id=satellite.id)
    assert row.latest_metrics["cpu_usage_percent"] == 100
    assert row.latest_metrics["memory_usage_mb"] == 0
    assert row.latest_metrics["disk_usage_percent"] == 100
    history = await SatelliteHeartbeat.get(satellite_id=satellite.id)
    assert (history.cpu_usage_percent, history.memory_usage_mb) == (100, 0)


async def test_unknown_status_and_process_enums_are_stored_as_unknown(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, rt: Runtime
) -> None:
    satellite = await make_satellite()
    body = heartbeat_body(
        status="rebooting",
        processes=[{"id": "proc-1", "server_name": "x", "status": "zombie",
                    "health_status": "so-so"}],
    )

    status, _ = await send(http, satellite, body)
    await rt.heartbeats.flush()

    assert status == 200
    assert (await Satellite.get(id=satellite.id)).reported_status is ReportedStatus.UNKNOWN
    process = await SatelliteProcess.get(satellite_id=satellite.id, process_id="proc-1")
    assert process.status is ProcessStatus.UNKNOWN
    assert process.health_status is HealthStatus.UNKNOWN


async def test_over_long_values_are_truncated_not_refused(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, rt: Runtime
) -> None:
    satellite = await make_satellite()
    processes = [{"id": f"p-{index}", "status": "running"} for index in range(600)]
    body = heartbeat_body(version="v" * 500, processes=processes, error_count=-4,
                          satellite_url="http://edge.example:3001/" + "a" * 5000)

    status, _ = await send(http, satellite, body)
    await rt.heartbeats.flush()

    assert status == 200
    row = await Satellite.get(id=satellite.id)
    assert row.version == "v" * 64
    assert row.process_count == 500
    assert row.error_count == 0
    assert row.satellite_url is not None
    assert len(row.satellite_url) == 2048
    assert await SatelliteProcess.filter(satellite_id=satellite.id).count() == 500


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (heartbeat_body(system_metrics={"cpu_usage_percent": "12", "memory_usage_mb": 1}),
         "system_metrics.cpu_usage_percent"),
        (heartbeat_body(system_metrics={"cpu_usage_percent": True, "memory_usage_mb": 1}),
         "system_metrics.cpu_usage_percent"),
        (heartbeat_body(error_count="none"), "error_count"),
        (heartbeat_body(processes=[{"id": 7}]), "processes.0.id"),
        (heartbeat_body(processes={"id": "p"}), "processes"),
        ({"status": "active"}, "system_metrics"),
        ({"system_metrics": {"cpu_usage_percent": 1, "memory_usage_mb": 1}}, "status"),
        (heartbeat_body(system_metrics={"memory_usage_mb": 1}),
         "system_metrics.cpu_usage_percent"),
    ],
)
async def test_wrong_types_and_missing_required_fields_are_400_validation(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, body: Json, field: str
) -> None:
    satellite = await make_satellite()

    status, answer = await send(http, satellite, body)

    assert status == 400
    assert "validation" in answer["error"]
    assert field in [detail["field"] for detail in answer["details"]]


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"active"', b"not json", b""])
async def test_a_body_that_is_not_a_json_object_is_400_validation(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, raw: bytes
) -> None:
    satellite = await make_satellite()

    status, answer = await send(http, satellite, None, raw=raw)

    assert status == 400
    assert "validation" in answer["error"]


async def test_refused_heartbeat_changes_nothing(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, rt: Runtime
) -> None:
    satellite = await make_satellite(active=False)

    status, _ = await send(http, satellite, {"status": "active", "system_metrics": "fine"})
    await rt.heartbeats.flush()

    assert status == 400
    row = await Satellite.get(id=satellite.id)
    assert row.status is SatelliteStatus.INACTIVE
    assert row.last_heartbeat_at is None


# ---- the reference client ---------------------------------------------------

def reference_headers(satellite: TestSatellite) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {satellite.api_key}",
        "Content-Type": "application/json",
        "User-Agent": "DeployStack-Satellite/0.1.0 (Node.js)",
        "Accept": "application/json, text/plain, */*",
        "Accept-Language": "en-US,en;q=0.9",
        "Accept-Encoding": "gzip, deflate, br",
        "Cache-Control": "no-cache",
        "Connection": "keep-alive",
    }


REFERENCE_HEARTBEAT: Json = {
    "status": "active",
    "system_metrics": {
        "cpu_usage_percent": 0, "memory_usage_mb": 61.37, "disk_usage_percent": 0,
        "uptime_seconds": 3605.2,
    },
    "processes": [
        {"id": "http-proxy-context7-1732712345678", "server_name": "context7",
         "status": "running", "health_status": "healthy",
         "performance_metrics": {"total_requests": 42, "avg_response_time_ms": 118.5}},
        {"id": "http-proxy-github-1732712349999", "server_name": "github",
         "status": "starting", "health_status": "unknown",
         "performance_metrics": {"total_requests": 0, "avg_response_time_ms": 0}},
    ],
    "error_count": 0,
    "version": "0.1.0",
    "processes_by_team": {},
    "normalized_data": {
        "timestamp": "2026-01-05T10:00:00.000Z",
        "satellite_info": {"id": "x", "name": "edge-1"},
        "summary": {"total_processes": 2, "running": 1},
        "teams": [], "servers": [], "tools": [],
    },
}


async def test_reference_client_heartbeat_is_accepted_and_persisted(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite(active=False)

    async with http.post(satellite.path("heartbeat"), data=json.dumps(REFERENCE_HEARTBEAT),
                         headers=reference_headers(satellite)) as response:
        assert response.status == 200
        assert (await response.json())["success"] is True

    async def persisted() -> bool:
        row = await Satellite.get(id=satellite.id)
        processes = await SatelliteProcess.filter(satellite_id=satellite.id).count()
        return row.last_heartbeat_at is not None and processes == 2

    await eventually(persisted)  # written by the flusher, not by the request
    row = await Satellite.get(id=satellite.id)
    assert row.status is SatelliteStatus.ACTIVE
    assert row.version == "0.1.0"
    assert row.process_count == 2
    assert row.online
    assert row.latest_metrics["uptime_seconds"] == pytest.approx(3605.2)
    process = await SatelliteProcess.get(
        satellite_id=satellite.id, process_id="http-proxy-context7-1732712345678"
    )
    assert process.status is ProcessStatus.RUNNING
    assert process.health_status is HealthStatus.HEALTHY
    assert process.performance_metrics == {"total_requests": 42, "avg_response_time_ms": 118.5}
    assert await SatelliteHeartbeat.filter(satellite_id=satellite.id).count() == 1


async def test_reference_verification_heartbeat_with_stored_credentials_is_accepted(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite()
    body = {**REFERENCE_HEARTBEAT, "processes": [], "version": "1.0.0"}

    async with http.post(satellite.path("heartbeat"), data=json.dumps(body),
                         headers=reference_headers(satellite)) as response:
        assert response.status == 200


# ---- answered from memory ---------------------------------------------------

_EXECUTE_METHODS = (
    "execute_query", "execute_query_dict", "execute_insert", "execute_many", "execute_script",
    "_in_transaction",  # a transaction's statements bypass the methods above
)


async def test_heartbeat_answer_runs_no_database_query(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only the request path is measured: the flusher, refresh and jobs wait an hour here.
    settings = make_settings(tmp_path, flush_interval_seconds=3600, state_refresh_seconds=3600,
                             jobs_interval_seconds=3600, retention_interval_seconds=3600)
    async with running(settings) as (rt, session):
        satellite = await satellite_factory(rt)()  # active
        await asyncio.sleep(0.2)  # let the jobs' first runs finish
        queries: list[str] = []
        client = connections.get("default")
        for name in _EXECUTE_METHODS:
            original = getattr(client, name)

            def spy(*args: Any, _original: Any = original, _name: str = name, **kwargs: Any
                    ) -> Any:
                if not in_background_task():
                    queries.append(f"{_name}: {str(args[0])[:60] if args else ''}")
                return _original(*args, **kwargs)

            monkeypatch.setattr(client, name, spy)

        for _ in range(3):
            status, _ = await send(session, satellite, heartbeat_body(processes=[
                {"id": "p1", "status": "running"}]))
            assert status == 200
        assert queries == []
        assert rt.heartbeats.pending_history == 3

        assert await rt.heartbeats.flush()  # persistence happens here, in one batch
        assert any(query.startswith("_in_transaction") for query in queries)  # the spy sees it
        row = await Satellite.get(id=satellite.id)
        assert row.last_heartbeat_at is not None
        assert await SatelliteHeartbeat.filter(satellite_id=satellite.id).count() == 3


async def test_heartbeats_are_never_rate_limited(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, poll_burst=1, events_burst=1, poll_rate_per_second=0.01,
                             events_rate_per_second=0.01)
    async with running(settings) as (rt, session):
        satellite = await satellite_factory(rt)()
        statuses = [(await send(session, satellite, heartbeat_body()))[0] for _ in range(40)]
    assert statuses == [200] * 40


async def test_satellite_url_is_kept_and_an_empty_one_does_not_erase_it(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, rt: Runtime
) -> None:
    satellite = await make_satellite()

    await send(http, satellite, heartbeat_body(satellite_url="http://10.0.0.5:3001"))
    await rt.heartbeats.flush()
    await send(http, satellite, heartbeat_body(satellite_url=""))
    await rt.heartbeats.flush()

    assert (await Satellite.get(id=satellite.id)).satellite_url == "http://10.0.0.5:3001"


# ---- random bodies ----------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=16),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
numbers = (
    st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats()  # NaN and ±Infinity included: Python's JSON reads them
    | st.sampled_from([0, 100, 250, -1, 2**63, 1e308])
)
loose_text = st.text(max_size=40) | st.sampled_from(["", "\x00", "\ud800", "active", "x" * 3000])
metric_values = numbers | st.none() | loose_text | st.booleans()
process_items = st.fixed_dictionaries(
    {"id": loose_text},
    optional={
        "server_name": loose_text | st.none(),
        "status": st.sampled_from(list(ProcessStatus)) | loose_text | st.none(),
        "health_status": st.sampled_from(list(HealthStatus)) | loose_text,
        "performance_metrics": st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    },
)
heartbeat_shaped = st.fixed_dictionaries(
    {
        "status": st.sampled_from(["active", "degraded", "error"]) | loose_text,
        "system_metrics": st.fixed_dictionaries(
            {"cpu_usage_percent": numbers, "memory_usage_mb": numbers},
            optional={name: metric_values for name in (
                "disk_usage_percent", "uptime_seconds", "network_rx_bytes", "network_tx_bytes")},
        ),
    },
    optional={
        "processes": st.lists(process_items, max_size=4) | st.none(),
        "error_count": numbers | st.none(),
        "version": loose_text | st.none(),
        "satellite_url": loose_text,
        "processes_by_team": json_values,
        "normalized_data": json_values,
    },
)
RANDOM = hypothesis_settings(
    max_examples=100, deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _post(connection: http.client.HTTPConnection, satellite: TestSatellite, body: bytes
          ) -> tuple[int, Json]:
    connection.request("POST", satellite.path("heartbeat"), body=body, headers=satellite.headers)
    response = connection.getresponse()
    return response.status, json.loads(response.read() or b"{}")


def test_random_bodies_never_produce_a_server_error(threaded_server: ThreadedServer) -> None:
    rt = threaded_server.rt

    async def new_satellite() -> TestSatellite:
        return await satellite_factory(rt)(active=False)

    satellite = threaded_server.run(new_satellite())
    parts = urlsplit(threaded_server.base_url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    accepted: list[Json] = []

    @RANDOM
    @given(st.one_of(json_values, heartbeat_shaped))
    def check(body: Any) -> None:
        status, answer = _post(connection, satellite, json.dumps(body).encode())
        assert status in (200, 400), (status, answer)
        if status == 400:
            assert "validation" in answer["error"]
        else:
            accepted.append(body)

    check()
    connection.close()
    # Whatever was accepted is storable: the flush succeeds and nothing was dropped.
    assert threaded_server.run(rt.heartbeats.flush())
    assert rt.metrics.registry.get_sample_value(
        "groundstation_heartbeat_flush_failures_total") == 0
    assert accepted, "no generated heartbeat was accepted"
    state = rt.fleet.get(satellite.id)
    assert state is not None
    assert state.latest_metrics is not None
    assert all(math.isfinite(value) for value in state.latest_metrics.values())

    async def stored() -> tuple[Satellite, int]:
        row = await Satellite.get(id=satellite.id)
        return row, await SatelliteHeartbeat.filter(satellite_id=satellite.id).count()

    row, history_rows = threaded_server.run(stored())
    assert row.status is SatelliteStatus.ACTIVE
    assert history_rows == len(accepted)
