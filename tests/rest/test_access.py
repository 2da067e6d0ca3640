"""The access log (`app.access`) and request ids, against the real app on a real socket
(docs/operations.md §6)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from app.models.enums import GlobalRole
from tests.fixtures.graphql import ClientFactory
from tests.fixtures.satellites import SatelliteFactory, satellite_factory
from tests.fixtures.server import make_settings, running

HEARTBEAT = {"status": "active",
             "system_metrics": {"cpu_usage_percent": 5, "memory_usage_mb": 128}}
HEARTBEAT_ROUTE = "/api/satellites/{satellite_id}/heartbeat"
GENERATED_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def access_log(caplog: pytest.LogCaptureFixture) -> Iterator[list[logging.LogRecord]]:
    """The access-log records written while the test runs."""
    caplog.set_level(logging.INFO, logger="app.access")
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect()
    logging.getLogger("app.access").addHandler(handler)
    try:
        yield records
    finally:
        logging.getLogger("app.access").removeHandler(handler)


def fields(record: logging.LogRecord) -> dict[str, object]:
    wanted = ("method", "route", "status", "duration_ms", "request_id", "remote",
              "satellite_id", "user_id", "sample_rate")
    return {name: getattr(record, name) for name in wanted if hasattr(record, name)}


async def test_every_request_gets_one_line_with_the_route_template_never_the_raw_path(
    http: aiohttp.ClientSession, access_log: list[logging.LogRecord],
) -> None:
    requests = [("GET", "/api/health", 200, "/api/health"),
                ("GET", "/api/openapi.json?token=secret-value", 200, "/api/openapi.json"),
                ("GET", "/api/nothing/abc123?key=secret-value", 404, "unmatched"),
                ("DELETE", "/api/health", 405, "unmatched")]
    answered_ids = []
    for method, path, status, _ in requests:
        async with http.request(method, path) as response:
            assert response.status == status
            answered_ids.append(response.headers["X-Request-Id"])

    assert [fields(record)["route"] for record in access_log] == [r[3] for r in requests]
    for record, (method, _, status, _), request_id in zip(
            access_log, requests, answered_ids, strict=True):
        line = fields(record)
        assert line["method"] == method
        assert line["status"] == status
        assert line["request_id"] == request_id
        assert line["remote"] == "127.0.0.1"
        assert isinstance(line["duration_ms"], float)
        assert 0 <= line["duration_ms"] < 10_000
        assert record.getMessage() == "request"
    logged = json.dumps([fields(record) for record in access_log])
    assert "secret-value" not in logged
    assert "abc123" not in logged


async def test_satellite_and_user_ids_are_logged_once_known(
    tmp_path: Path, access_log: list[logging.LogRecord], graphql_as: ClientFactory,
    make_satellite: SatelliteFactory, http: aiohttp.ClientSession,
) -> None:
    satellite = await make_satellite()
    admin = await graphql_as(global_role=GlobalRole.GLOBAL_ADMIN)
    access_log.clear()

    async with http.post(satellite.path("command-result"), headers=satellite.headers,
                         json={"command_id": "nope", "status": "completed"}) as response:
        assert response.status == 404
    await admin.data("{ me { id } }")

    result_line, graphql_line = (fields(record) for record in access_log)
    assert result_line["satellite_id"] == satellite.id
    assert result_line["route"] == "/api/satellites/{satellite_id}/command-result"
    assert "user_id" not in result_line
    assert graphql_line["user_id"] == admin.user_id
    assert graphql_line["route"] == "/graphql"
    assert "satellite_id" not in graphql_line


async def test_hot_routes_are_sampled_but_errors_and_slow_requests_always_logged(
    tmp_path: Path, access_log: list[logging.LogRecord],
) -> None:
    settings = make_settings(tmp_path, access_log_sample_rate=0.0, access_log_slow_ms=500.0)
    async with running(settings) as (rt, http):
        satellite = await satellite_factory(rt)()
        for _ in range(5):
            async with http.post(satellite.path("heartbeat"), json=HEARTBEAT,
                                 headers=satellite.headers) as response:
                assert response.status == 200
        async with http.get(satellite.path("commands") + "?wait=1",
                            headers=satellite.headers) as response:  # held 1 s: not slow
            assert response.status == 200
        assert access_log == []  # a rate of 0 logs no fast successful hot request

        async with http.post(satellite.path("heartbeat"), json={"status": 3},
                             headers=satellite.headers) as response:
            assert response.status == 400
        async with http.get("/api/health") as response:  # not a hot route
            assert response.status == 200
        assert [(fields(r)["route"], fields(r)["status"]) for r in access_log] == [
            (HEARTBEAT_ROUTE, 400), ("/api/health", 200)]

    access_log.clear()
    async with running(make_settings(tmp_path, access_log_sample_rate=0.0,
                                     access_log_slow_ms=0.0)) as (rt, http):
        satellite = await satellite_factory(rt)()
        async with http.post(satellite.path("heartbeat"), json=HEARTBEAT,
                             headers=satellite.headers) as response:
            assert response.status == 200
    (slow,) = access_log  # every request is "slow" with a threshold of 0 ms
    assert fields(slow)["route"] == HEARTBEAT_ROUTE
    assert "sample_rate" not in fields(slow)


async def test_a_rate_of_one_logs_every_hot_request_and_says_so(
    tmp_path: Path, access_log: list[logging.LogRecord],
) -> None:
    async with running(make_settings(tmp_path, access_log_sample_rate=1.0)) as (rt, http):
        satellite = await satellite_factory(rt)()
        for _ in range(3):
            async with http.post(satellite.path("heartbeat"), json=HEARTBEAT,
                                 headers=satellite.headers) as response:
                assert response.status == 200
    assert [fields(r)["sample_rate"] for r in access_log] == [1.0, 1.0, 1.0]
    assert {fields(r)["satellite_id"] for r in access_log} == {satellite.id}


async def test_the_access_log_can_be_turned_off(
    tmp_path: Path, access_log: list[logging.LogRecord],
) -> None:
    async with running(make_settings(tmp_path, access_log=False)) as (_, http):
        for path in ("/api/health", "/api/missing"):
            async with http.get(path):
                pass
    assert access_log == []


async def test_request_ids_are_made_or_kept_and_returned_everywhere(
    http: aiohttp.ClientSession, access_log: list[logging.LogRecord],
    make_satellite: SatelliteFactory,
) -> None:
    async with http.get("/api/health") as first, http.get("/api/health") as second:
        made = [first.headers["X-Request-Id"], second.headers["X-Request-Id"]]
    assert all(GENERATED_ID.fullmatch(request_id) for request_id in made)
    assert made[0] != made[1]

    satellite = await make_satellite()
    kept = "req-2024.01:abc/DEF+ghi="
    for method, path, status in [("GET", "/api/no-such-route", 404),
                                 ("PUT", "/api/health", 405),
                                 ("POST", satellite.path("events"), 413),
                                 ("POST", satellite.path("heartbeat"), 400)]:
        body = b"x" * (9 * 1024 * 1024) if status == 413 else b"{}"
        headers = {**satellite.headers, "X-Request-Id": kept}
        async with http.request(method, path, data=body, headers=headers) as response:
            assert response.status == status
            assert response.headers["X-Request-Id"] == kept
            answer = await response.json()
            assert answer["request_id"] == kept
            assert answer["success"] is False
            assert answer["error"]
            assert answer["message"]
    assert {fields(record)["request_id"] for record in access_log[-4:]} == {kept}

    for unsafe in ("x" * 129, "with space", "semi;colon", "quote\"d", ""):
        async with http.get("/api/health", headers={"X-Request-Id": unsafe}) as response:
            replaced = response.headers["X-Request-Id"]
            assert GENERATED_ID.fullmatch(replaced), (unsafe, replaced)
    assert "with space" not in json.dumps([fields(record) for record in access_log])
