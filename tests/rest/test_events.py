"""`POST /api/satellites/{id}/events` over real HTTP (docs/protocol.md §10, §1, §12 defect 8)."""

from __future__ import annotations

import http.client
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.models import (
    AuditEntry,
    McpClientActivity,
    McpClientSession,
    McpInstallation,
    McpRequestLog,
    McpServer,
    McpServerLog,
    McpTool,
    ResourceLimitBreach,
    SatelliteConfigState,
    SatelliteEvent,
    SatelliteProcess,
    SatelliteUsageLog,
    Team,
)
from app.models.enums import HealthStatus, ProcessStatus, SatelliteType, TeamRole, TransportType
from app.runtime import Runtime
from app.services.common.actors import CLI_ACTOR
from app.services.people.teams import add_team_member
from app.wire.events import DATA_FORMS, REQUIRED_DATA
from tests.compat.reference_events import Fleet, registry_event
from tests.fixtures.people import TeamFactory, UserFactory
from tests.fixtures.satellites import SatelliteFactory, TestSatellite, satellite_factory
from tests.fixtures.server import make_settings, running
from tests.fixtures.threaded import ThreadedServer

Json = dict[str, Any]
TS = "2026-01-02T03:04:05.000Z"


def sample_data(event_type: str, team_id: str | None, installation_id: str,
                server_id: str | None = None) -> Json:
    """Data with every required field of the type, shaped as the reference client sends it."""
    server = server_id or installation_id
    samples: dict[str, Json] = {
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
    }
    if event_type in samples:
        return samples[event_type]
    data: Json = registry_event(event_type, Fleet(team_id, server, "files", "0" * 32))["data"]
    return data


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
    # a status outside the documented set is kept as sent; a wrong JSON type fails
    code, body = await post_events(http, satellite, [
        event("mcp.server.status_changed", {**data, "status": "sleepy"}),
        event("mcp.server.status_changed", {**data, "status": 3}),
    ])
    assert (body["processed"], body["failed"]) == (1, 1)
    assert body["failures"][0]["error"] == "Invalid event: data.status must be a string"
    assert (await McpInstallation.get(id=installation.id)).status == "sleepy"


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
    [(event_type, name) for event_type, names in REQUIRED_DATA.items()
     for name in (*names, *DATA_FORMS.get(event_type, ((),))[0])],  # + the backend form's
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


# ---- sessions, configuration, catalogue updates, users ------------------------------
def session_event(event_type: str, team_id: str | None, session_id: str, when: str,
                  **changes: Any) -> Json:
    data = {**sample_data(event_type, team_id, ""), "session_id": session_id, **changes}
    return {"type": event_type, "timestamp": when, "data": data}


async def test_client_sessions_apply_in_order_whatever_the_order(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, team: Team,
) -> None:
    satellite = await make_satellite()
    code, body = await post_events(http, satellite, [
        # never seen opening: recorded closed, its start the end minus the duration
        session_event("mcp.client.disconnected", team.id, "s-1", "2026-01-02T04:00:00Z",
                      connection_duration_seconds=600),
        # opened, closed, opened again: open
        session_event("mcp.client.connected", team.id, "s-2", "2026-01-02T04:00:00Z"),
        session_event("mcp.client.disconnected", team.id, "s-2", "2026-01-02T04:01:00Z"),
        session_event("mcp.client.connected", team.id, "s-2", "2026-01-02T04:02:00Z",
                      client_type="zed"),
        # activity alone does not make a session
        session_event("mcp.client.activity", team.id, "s-3", "2026-01-02T04:00:00Z"),
    ])
    assert (code, body["processed"], body["failed"]) == (200, 5, 0), body
    rows = {row.session_id: row for row in
            await McpClientSession.filter(satellite_id=satellite.id)}
    assert set(rows) == {"s-1", "s-2"}
    closed, reopened = rows["s-1"], rows["s-2"]
    assert (closed.connected_at, closed.disconnected_at) == (
        datetime(2026, 1, 2, 3, 50, tzinfo=UTC), datetime(2026, 1, 2, 4, tzinfo=UTC))
    assert (closed.duration_seconds, closed.disconnect_reason) == (600, "client_close")
    assert reopened.connected_at == datetime(2026, 1, 2, 4, 2, tzinfo=UTC)
    assert (reopened.disconnected_at, reopened.duration_seconds) == (None, None)
    assert reopened.client_type == "zed"  # outside the documented set: kept as sent
    assert reopened.team_id == team.id  # type: ignore[attr-defined]


async def test_activity_keeps_a_user_of_the_team_only(
    rt: Runtime, http: aiohttp.ClientSession, make_satellite: SatelliteFactory, team: Team,
    make_team: TeamFactory, make_user: UserFactory,
) -> None:
    member, stranger = await make_user(), await make_user()
    await add_team_member(rt, team.id, member.id, TeamRole.TEAM_USER, actor=CLI_ACTOR)
    other = await make_team()
    await add_team_member(rt, other.id, stranger.id, TeamRole.TEAM_USER, actor=CLI_ACTOR)
    satellite = await make_satellite()
    await post_events(http, satellite, [
        session_event("mcp.client.connected", team.id, session, TS)
        for session in ("s-member", "s-stranger", "s-nobody")])
    code, body = await post_events(http, satellite, [
        session_event("mcp.client.activity", team.id, "s-member", TS, user_id=member.id),
        session_event("mcp.client.activity", team.id, "s-stranger", TS, user_id=stranger.id),
        session_event("mcp.client.activity", team.id, "s-nobody", TS, user_id="0" * 32),
    ])
    assert (code, body["processed"], body["failed"]) == (200, 3, 0)
    users = {row.session_id: row.user_id  # type: ignore[attr-defined]
             for row in await McpClientSession.filter(satellite_id=satellite.id)}
    assert users == {"s-member": member.id, "s-stranger": None, "s-nobody": None}
    stored = await SatelliteEvent.filter(satellite_id=satellite.id,
                                         event_type="mcp.client.activity").order_by("id")
    assert [row.data.get("user_id") for row in stored] == [member.id, None, None]


async def test_a_config_refresh_clears_the_last_error(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory,
) -> None:
    satellite = await make_satellite()
    failed = {"type": "config.error", "timestamp": TS,
              "data": {**sample_data("config.error", None, ""), "error_type": "dns",
                       "status_code": 503}}
    await post_events(http, satellite, [failed])
    row = await SatelliteConfigState.get(satellite_id=satellite.id)
    assert (row.error_type, row.error_status_code, row.refreshed_at) == ("dns", 503, None)
    await post_events(http, satellite, [event("config.refreshed",
                                              sample_data("config.refreshed", None, ""))])
    row = await SatelliteConfigState.get(satellite_id=satellite.id)
    assert [row.error_at, row.error_type, row.error_message, row.error_status_code] == [
        None, None, None, None]
    assert row.refreshed_at is not None


async def test_tools_updated_adds_and_removes_by_name(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, team: Team,
    installation: McpInstallation,
) -> None:
    satellite = await make_satellite()
    discovered = sample_data("mcp.tools.discovered", team.id, installation.id)
    updated = {**sample_data("mcp.tools.updated", team.id, installation.id),
               "added_tools": ["read_file", "search", "search"],
               "removed_tools": ["write_file", "never_there"]}
    code, body = await post_events(http, satellite, [event("mcp.tools.discovered", discovered),
                                                     event("mcp.tools.updated", updated)])
    assert (code, body["processed"], body["failed"]) == (200, 2, 0)
    tools = {row.tool_name: row for row in await McpTool.filter(installation_id=installation.id)}
    assert sorted(tools) == ["read_file", "search"]
    assert tools["read_file"].description == "Read"  # already there: kept as discovered


async def test_security_and_limit_events_of_a_team_satellite_take_its_team(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, team: Team,
) -> None:
    satellite = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=team.id)
    auth = {"reason": "expired_token"}  # team_id, client_id and ip_address are optional
    limit = {**sample_data("resource.limit.exceeded", None, ""), "resource_type": "gpu"}
    code, body = await post_events(http, satellite, [event("security.auth.failed", auth),
                                                     event("resource.limit.exceeded", limit)])
    assert (code, body["processed"], body["failed"]) == (200, 2, 0)
    entry = await AuditEntry.get(actor_satellite_id=satellite.id)
    assert (entry.team_id, entry.details["reason"]) == (team.id, "expired_token")
    breach = await ResourceLimitBreach.get(satellite_id=satellite.id)
    assert breach.resource_type == "gpu"  # outside the documented set: kept as sent
    assert breach.team_id == team.id  # type: ignore[attr-defined]


@pytest.mark.parametrize(("event_type", "changes", "error"), [
    ("mcp.server.started", {"process_id": "4242"}, "data.process_id must be a number or null"),
    ("mcp.tools.discovered", {"tools": None}, "data.tools must be an array"),
    ("mcp.tools.updated", {"added_tools": ["a", 1]}, "data.added_tools must be an array of "
                                                     "strings"),
    ("config.refreshed", {"change_detected": "yes"}, "data.change_detected must be a boolean "
                                                     "or null"),
    ("mcp.client.connected", {"session_id": None}, "data.session_id must be a string of at "
                                                   "most 255 characters"),
    ("mcp.client.activity", {"session_id": "s" * 256}, "data.session_id must be a string of "
                                                        "at most 255 characters or null"),
    ("resource.limit.exceeded", {"current_value": "high"}, "data.current_value must be a "
                                                           "number or null"),
    ("security.auth.failed", {"ip_address": 7}, "data.ip_address must be a string or null"),
])
async def test_a_value_of_the_wrong_json_type_fails_that_event(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, team: Team,
    installation: McpInstallation, event_type: str, changes: Json, error: str,
) -> None:
    satellite = await make_satellite()
    data = {**sample_data(event_type, team.id, installation.id), **changes}
    code, body = await post_events(http, satellite, [event(event_type, data)])
    assert (code, body["processed"], body["failed"]) == (200, 0, 1)
    assert body["failures"][0]["error"] == f"Invalid event: {error}"


async def test_tools_discovered_in_the_satellite_form_replaces_the_catalogue(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, team: Team,
    installation: McpInstallation,
) -> None:
    satellite = await make_satellite()
    await post_events(http, satellite, [event(
        "mcp.tools.discovered", sample_data("mcp.tools.discovered", team.id, installation.id))])
    satellite_form = {"server_id": installation.id, "server_slug": "files", "team_id": team.id,
                      "tool_count": 1, "tool_names": ["search"]}
    code, body = await post_events(http, satellite,
                                   [event("mcp.tools.discovered", satellite_form)])
    assert (code, body["processed"], body["failed"]) == (200, 1, 0)
    assert [row.tool_name for row in await McpTool.filter(installation_id=installation.id)] == [
        "search"]
    del satellite_form["tool_names"]
    code, body = await post_events(http, satellite,
                                   [event("mcp.tools.discovered", satellite_form)])
    assert body["failures"][0]["error"] == (
        "Missing required data field(s): [installation_id, tools] or [tool_names]")


# ---- batches ----------------------------------------------------------------------
async def test_mixed_batch_reports_partial_success_in_request_order(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, team: Team,
    installation: McpInstallation,
) -> None:
    satellite = await make_satellite()
    good = event("mcp.tool.executed", sample_data("mcp.tool.executed", team.id, installation.id))
    events = [good, event("Not A Type", {}), {"type": "mcp.tool.executed", "data": {}},
              "not an object", good, event("mcp.unknown", {})]
    code, body = await post_events(http, satellite, events)
    assert code == 200
    assert (body["success"], body["processed"], body["failed"]) == (True, 3, 3)
    assert [failure["index"] for failure in body["failures"]] == [1, 2, 3]
    assert body["failures"][0] == {
        "index": 1, "type": "Not A Type",
        "error": "Invalid event type: Not A Type (expected dotted lower-case words, "
                 "e.g. mcp.server.started)"}
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
