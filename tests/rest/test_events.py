"""`POST /api/satellites/{id}/events` over real HTTP (docs/protocol.md §10, §1, §12 defect 8)."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.models import (
    McpClientActivity,
    McpInstallation,
    McpRequestLog,
    McpServer,
    McpServerLog,
    McpTool,
    SatelliteEvent,
    SatelliteProcess,
    SatelliteUsageLog,
    Team,
)
from app.models.enums import HealthStatus, ProcessStatus, SatelliteType, TransportType
from app.wire.events import REQUIRED_DATA
from tests.fixtures.people import TeamFactory
from tests.fixtures.satellites import SatelliteFactory, TestSatellite, satellite_factory
from tests.fixtures.server import make_settings, running
from tests.fixtures.threaded import ThreadedServer

Json = dict[str, Any]
TS = "2026-01-02T03:04:05.000Z"


def sample_data(event_type: str, team_id: str | None, installation_id: str,
                server_id: str | None = None) -> Json:
    """Data with every required field of the type, shaped as the reference client sends it."""
    server = server_id or installation_id
    return {
        "mcp.server.started": {"server_id": server, "server_slug": "files", "team_id": team_id,
                               "process_id": 4242, "transport": "stdio", "tool_count": 3,
                               "spawn_duration_ms": 120},
        "mcp.server.crashed": {"server_id": server, "server_slug": "files", "team_id": team_id,
                               "process_id": 4242, "exit_code": 1, "signal": None,
                               "uptime_seconds": 30, "crash_count": 2, "will_restart": True},
        "mcp.server.restarted": {"server_id": server, "server_slug": "files",
                                 "team_id": team_id, "old_process_id": 4242,
                                 "new_process_id": 4243, "restart_reason": "crash",
                                 "attempt_number": 1},
        "mcp.server.dormant": {"server_id": server, "server_slug": "files", "team_id": team_id,
                               "process_id": 4242, "idle_duration_seconds": 600,
                               "last_activity_at": TS},
        "mcp.server.respawned": {"server_id": server, "server_slug": "files",
                                 "team_id": team_id, "process_id": 4244,
                                 "dormant_duration_seconds": 60, "respawn_duration_ms": 80},
        "mcp.server.status_changed": {"installation_id": installation_id, "team_id": team_id,
                                      "status": "online", "timestamp": TS,
                                      "status_message": "all good"},
        "mcp.tool.executed": {"tool_name": "read_file", "server_id": server,
                              "team_id": team_id, "duration_ms": 12.5, "success": True},
        "mcp.tools.discovered": {"installation_id": installation_id, "team_id": team_id,
                                 "server_slug": "files", "tool_count": 2, "tools": [
                                     {"tool_name": "read_file", "description": "Read",
                                      "input_schema": {"type": "object"}, "token_count": 10},
                                     {"tool_name": "write_file", "description": "Write",
                                      "input_schema": {"type": "object"}, "token_count": 12},
                                 ]},
        "mcp.server.logs": {"installation_id": installation_id, "team_id": team_id,
                            "logs": [{"level": "info", "message": "ready", "timestamp": TS}]},
        "mcp.request.logs": {"installation_id": installation_id, "team_id": team_id,
                             "requests": [{"tool_name": "read_file",
                                           "tool_params": {"path": "/a"},
                                           "response_time_ms": 5, "success": True,
                                           "timestamp": TS}]},
        "mcp.client.activity": {"team_id": team_id, "request_count": 7, "tool_call_count": 3,
                                "last_activity_at": TS},
    }[event_type]


def event(event_type: str, data: Json, client_id: str | None = None) -> Json:
    body: Json = {"type": event_type, "timestamp": TS, "data": data}
    if client_id is not None:
        body["id"] = client_id
    return body


async def post_events(http: aiohttp.ClientSession, satellite: TestSatellite, events: Any,
                      ) -> tuple[int, Json]:
    async with http.post(satellite.path("events"), data=json.dumps({"events": events}),
                         headers=satellite.headers) as response:
        return response.status, await response.json()


async def make_installation(team: Team, *, secret_env: str | None = None) -> McpInstallation:
    server = await McpServer.create(
        slug=f"files-{team.slug}", name="Files", transport_type=TransportType.STDIO,
        command="npx", team_env_schema=[{"name": secret_env, "secret": True}] if secret_env
        else None,
    )
    return await McpInstallation.create(team=team, server=server, name="files")


@pytest.fixture
async def team(make_team: TeamFactory) -> Team:
    return await make_team()


@pytest.fixture
async def installation(team: Team) -> McpInstallation:
    return await make_installation(team)


# ---- happy paths ----------------------------------------------------------------
async def test_process_events_drive_the_process_row(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, team: Team,
    installation: McpInstallation,
) -> None:
    satellite = await make_satellite()
    expected = {
        "mcp.server.started": (ProcessStatus.RUNNING, HealthStatus.HEALTHY, 4242),
        "mcp.server.crashed": (ProcessStatus.FAILED, HealthStatus.UNHEALTHY, None),
        "mcp.server.restarted": (ProcessStatus.RUNNING, HealthStatus.HEALTHY, 4243),
        "mcp.server.dormant": (ProcessStatus.STOPPED, HealthStatus.UNKNOWN, None),
        "mcp.server.respawned": (ProcessStatus.RUNNING, HealthStatus.HEALTHY, 4244),
    }
    for event_type, (status, health, pid) in expected.items():
        code, body = await post_events(
            http, satellite, [event(event_type, sample_data(event_type, team.id, installation.id))]
        )
        assert (code, body["processed"], body["failed"]) == (200, 1, 0), body
        row = await SatelliteProcess.get(satellite_id=satellite.id)
        assert (row.status, row.health_status, row.os_pid) == (status, health, pid), event_type
        assert row.installation_id == installation.id
        assert row.team_id == team.id  # type: ignore[attr-defined]
        if event_type == "mcp.server.crashed":
            assert row.error_message
            assert "code 1" in row.error_message


async def test_status_changed_sets_the_installation_status(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, team: Team,
    installation: McpInstallation,
) -> None:
    satellite = await make_satellite()
    data = sample_data("mcp.server.status_changed", team.id, installation.id)
    code, body = await post_events(http, satellite, [event("mcp.server.status_changed", data)])
    assert code == 200
    assert body["processed"] == 1
    row = await McpInstallation.get(id=installation.id)
    assert (row.status, row.status_message) == ("online", "all good")
    code, body = await post_events(
        http, satellite, [event("mcp.server.status_changed", {**data, "status": "sleepy"})]
    )
    assert body["failed"] == 1
    assert "status" in body["failures"][0]["error"]


async def test_tool_executed_writes_a_usage_row(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, team: Team,
    installation: McpInstallation,
) -> None:
    satellite = await make_satellite()
    data = sample_data("mcp.tool.executed", None, installation.id)
    code, body = await post_events(http, satellite, [event("mcp.tool.executed", data)])
    assert code == 200
    assert body["processed"] == 1
    usage = await SatelliteUsageLog.get(satellite_id=satellite.id)
    assert (usage.tool_name, usage.duration_ms, usage.success) == ("read_file", 12.5, True)
    assert usage.team_id == team.id  # type: ignore[attr-defined]


async def test_tools_discovered_replaces_the_catalogue(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, team: Team,
    installation: McpInstallation,
) -> None:
    satellite = await make_satellite()
    data = sample_data("mcp.tools.discovered", team.id, installation.id)
    await post_events(http, satellite, [event("mcp.tools.discovered", data)])
    assert sorted(await McpTool.filter(installation_id=installation.id)
                  .values_list("tool_name", flat=True)) == ["read_file", "write_file"]
    data["tools"] = [{"tool_name": "search", "description": None, "input_schema": None,
                      "token_count": None}]
    await post_events(http, satellite, [event("mcp.tools.discovered", data)])
    assert await McpTool.filter(installation_id=installation.id).values_list(
        "tool_name", flat=True) == ["search"]


async def test_server_logs_are_stored(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, team: Team,
    installation: McpInstallation,
) -> None:
    satellite = await make_satellite()
    data = sample_data("mcp.server.logs", team.id, installation.id)
    await post_events(http, satellite, [event("mcp.server.logs", data)])
    row = await McpServerLog.get(installation_id=installation.id)
    assert (row.level, row.message) == ("info", "ready")


async def test_request_logs_redact_secret_looking_params(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, team: Team,
) -> None:
    installation = await make_installation(team, secret_env="GITHUB_PAT")
    satellite = await make_satellite()
    data = sample_data("mcp.request.logs", team.id, installation.id)
    data["requests"][0]["tool_params"] = {
        "path": "/a", "Authorization": "Bearer x", "api-key": "k", "db_password": "p",
        "github_pat": "ghp_1", "nested": {"refresh_token": "t", "page": 2},
    }
    code, body = await post_events(http, satellite, [event("mcp.request.logs", data)])
    assert code == 200
    assert body["processed"] == 1
    row = await McpRequestLog.get(installation_id=installation.id)
    assert row.tool_params == {
        "path": "/a", "Authorization": "[REDACTED]", "api-key": "[REDACTED]",
        "db_password": "[REDACTED]", "github_pat": "[REDACTED]",
        "nested": {"refresh_token": "[REDACTED]", "page": 2},
    }
    stored = await SatelliteEvent.get(satellite_id=satellite.id)
    assert "ghp_1" not in json.dumps(stored.data)
    assert "Bearer x" not in json.dumps(stored.data)


async def test_client_activity_upserts_counters(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, team: Team,
) -> None:
    satellite = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=team.id)
    data = sample_data("mcp.client.activity", None, "")
    await post_events(http, satellite, [event("mcp.client.activity", data)])
    await post_events(http, satellite, [event("mcp.client.activity",
                                              {**data, "request_count": 9})])
    rows = await McpClientActivity.filter(satellite_id=satellite.id)
    assert [(row.request_count, row.tool_call_count) for row in rows] == [(9, 3)]


@pytest.mark.parametrize(
    ("event_type", "missing"),
    [(event_type, name) for event_type, names in REQUIRED_DATA.items() for name in names],
)
async def test_each_required_field_missing_fails_that_event(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, team: Team,
    installation: McpInstallation, event_type: str, missing: str,
) -> None:
    satellite = await make_satellite()
    data = sample_data(event_type, team.id, installation.id)
    del data[missing]
    code, body = await post_events(http, satellite, [event(event_type, data)])
    assert (code, body["processed"], body["failed"]) == (200, 0, 1)
    assert missing in body["failures"][0]["error"]
    assert body["failures"][0]["index"] == 0
    assert body["failures"][0]["type"] == event_type


# ---- batches ----------------------------------------------------------------------
async def test_mixed_batch_reports_partial_success_in_request_order(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, team: Team,
    installation: McpInstallation,
) -> None:
    satellite = await make_satellite()
    good = event("mcp.tool.executed", sample_data("mcp.tool.executed", team.id, installation.id))
    events = [good, event("mcp.unknown", {}), {"type": "mcp.tool.executed", "data": {}},
              "not an object", good]
    code, body = await post_events(http, satellite, events)
    assert code == 200
    assert (body["success"], body["processed"], body["failed"]) == (True, 2, 3)
    assert [failure["index"] for failure in body["failures"]] == [1, 2, 3]
    assert body["failures"][0] == {"index": 1, "type": "mcp.unknown",
                                   "error": "Unknown event type: mcp.unknown"}
    stored = await SatelliteEvent.filter(satellite_id=satellite.id).order_by("id")
    assert body["event_ids"] == [str(row.id) for row in stored]


async def test_replayed_client_ids_are_acknowledged_once(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, team: Team,
    installation: McpInstallation,
) -> None:
    satellite = await make_satellite()
    data = sample_data("mcp.tool.executed", team.id, installation.id)
    batch = [event("mcp.tool.executed", data, "a"), event("mcp.tool.executed", data, "b")]
    _, first = await post_events(http, satellite, batch)
    _, again = await post_events(http, satellite, [event("mcp.tool.executed", data, "c"),
                                                  *reversed(batch)])
    assert again["processed"] == 3
    assert again["event_ids"][1:] == list(reversed(first["event_ids"]))
    assert await SatelliteUsageLog.filter(satellite_id=satellite.id).count() == 3
    assert await SatelliteEvent.filter(satellite_id=satellite.id).count() == 3


@pytest.mark.parametrize("count", [0, 101])
async def test_empty_or_oversized_batches_are_validation_errors(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, count: int,
) -> None:
    satellite = await make_satellite()
    code, body = await post_events(http, satellite, [event("mcp.unknown", {})] * count)
    assert code == 400
    assert "validation" in body["error"]


async def test_a_body_over_8_mib_is_413_the_client_drops(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory,
) -> None:
    satellite = await make_satellite()
    payload = json.dumps({"events": [event("mcp.server.logs", {"pad": "x" * (9 << 20)})]})
    async with http.post(satellite.path("events"), data=payload,
                         headers=satellite.headers) as response:
        assert response.status == 413
        assert (await response.json())["error"] == "validation_failed: body too large"


@pytest.mark.parametrize("raw", [b"", b"{not json", b"[]", b'{"events": "x"}', b"null",
                                 b'{"other": 1}', b"[" * 50_000])
async def test_every_400_says_validation_so_the_client_drops_it(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, raw: bytes,
) -> None:
    satellite = await make_satellite()
    async with http.post(satellite.path("events"), data=raw,
                         headers=satellite.headers) as response:
        assert response.status == 400
        assert "validation" in (await response.json())["error"]


async def test_rate_limit_answers_before_the_body_size(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path, events_burst=1,
                                     events_rate_per_second=0.01)) as (rt, http):
        satellite = await satellite_factory(rt)()
        code, _ = await post_events(http, satellite, [event("mcp.unknown", {})])
        assert code == 200
        async with http.post(satellite.path("events"), data=b"x" * (9 << 20),
                             headers=satellite.headers) as response:
            assert response.status == 429
            assert "rate limit" in (await response.json())["error"]


# ---- team attribution ---------------------------------------------------------------
async def test_team_satellite_naming_another_teams_installation_fails_that_event(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, make_team: TeamFactory,
    team: Team, installation: McpInstallation,
) -> None:
    other_team = await make_team()
    satellite = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=other_team.id)
    own = event("mcp.client.activity", sample_data("mcp.client.activity", None, ""))
    foreign = event("mcp.server.status_changed",
                    sample_data("mcp.server.status_changed", None, installation.id))
    claims_other = event("mcp.client.activity",
                         sample_data("mcp.client.activity", team.id, ""))
    code, body = await post_events(http, satellite, [own, foreign, claims_other])
    assert (code, body["processed"], body["failed"]) == (200, 1, 2)
    assert "another team" in body["failures"][0]["error"]
    assert (await McpInstallation.get(id=installation.id)).status == "provisioning"
    stored = await SatelliteEvent.get(satellite_id=satellite.id)
    assert stored.team_id == other_team.id  # type: ignore[attr-defined]


async def test_global_satellite_events_take_the_installations_team(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, team: Team,
    installation: McpInstallation,
) -> None:
    satellite = await make_satellite(satellite_type=SatelliteType.GLOBAL)
    data = sample_data("mcp.tool.executed", None, installation.id)
    wrong = {**data, "team_id": "0" * 32}
    code, body = await post_events(http, satellite, [event("mcp.tool.executed", data),
                                                     event("mcp.tool.executed", wrong)])
    assert (code, body["processed"], body["failed"]) == (200, 1, 1)
    assert "does not match" in body["failures"][0]["error"]
    stored = await SatelliteEvent.get(satellite_id=satellite.id)
    assert stored.team_id == team.id  # type: ignore[attr-defined]
    assert stored.installation_id == installation.id


async def test_a_process_id_names_its_installation_before_any_heartbeat(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, team: Team,
    installation: McpInstallation,
) -> None:
    satellite = await make_satellite(satellite_type=SatelliteType.GLOBAL)
    data = sample_data("mcp.tool.executed", None, installation.id)
    data["server_id"] = f"files-{team.slug}-{installation.id}"  # longer than any id

    code, body = await post_events(http, satellite, [event("mcp.tool.executed", data)])

    assert (code, body["processed"], body["failed"]) == (200, 1, 0)
    stored = await SatelliteEvent.get(satellite_id=satellite.id)
    assert stored.installation_id == installation.id


async def test_ids_too_long_to_exist_are_unknown_ids_not_server_errors(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, team: Team,
    installation: McpInstallation,
) -> None:
    satellite = await make_satellite(satellite_type=SatelliteType.GLOBAL)
    logs = sample_data("mcp.server.logs", team.id, "x" * 40)
    tool = sample_data("mcp.tool.executed", "t" * 42, "unknown-server")
    good = sample_data("mcp.tool.executed", None, installation.id)

    code, body = await post_events(http, satellite, [
        event("mcp.server.logs", logs), event("mcp.tool.executed", tool),
        event("mcp.tool.executed", good)])

    # the unknown installation falls back to its (real) team; the unknown team fails alone
    assert (code, body["processed"], body["failed"]) == (200, 2, 1)
    assert [failure["index"] for failure in body["failures"]] == [1]


# ---- fuzzing ------------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=16,
)
event_bodies = st.builds(
    lambda kind, data, extra, stamp: {"type": kind, "timestamp": stamp, "data": data, **extra},
    st.sampled_from([*REQUIRED_DATA, "mcp.other"]) | st.text(max_size=10),
    st.fixed_dictionaries({}, optional={
        name: json_values for names in REQUIRED_DATA.values() for name in names
    }) | json_values,
    st.dictionaries(st.sampled_from(["id", "x"]), json_values, max_size=2),
    st.sampled_from([TS, "yesterday", 0, None]),
)
batch_bodies = json_values | st.builds(
    lambda events: {"events": events}, st.lists(event_bodies | json_values, max_size=5)
)


def test_random_event_bodies_never_5xx(threaded_server: ThreadedServer) -> None:
    satellite = threaded_server.run(satellite_factory(threaded_server.rt)())
    parts = urlsplit(threaded_server.base_url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)

    @settings(max_examples=150, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(batch_bodies)
    def check(body: Any) -> None:
        connection.request("POST", satellite.path("events"), body=json.dumps(body).encode(),
                           headers=satellite.headers)
        response = connection.getresponse()
        response.read()
        assert response.status < 500, body

    check()
