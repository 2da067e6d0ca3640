from __future__ import annotations

import logging
from pathlib import Path

import aiohttp
import pytest

from app.main import create_app, log_serving
from app.version import VERSION
from tests.fixtures.satellites import SatelliteFactory
from tests.fixtures.server import make_settings


async def test_health_reports_database_reachable_and_the_version(
    http: aiohttp.ClientSession,
) -> None:
    async with http.get("/api/health") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok", "version": VERSION}


async def test_registration_status_describes_token_based_method(
    http: aiohttp.ClientSession,
) -> None:
    async with http.get("/api/satellites/register/status") as response:
        body = await response.json()
    assert body["registration_method"] == "token_based"
    assert body["token_required"] is True
    assert body["supported_prefixes"] == [
        "deploystack_satellite_global_", "deploystack_satellite_team_"
    ]


async def test_unknown_route_answers_json_404(http: aiohttp.ClientSession) -> None:
    async with http.get("/api/nothing-here") as response:
        assert response.status == 404
        assert (await response.json())["error"] == "not_found"


async def test_metrics_exposes_request_counts(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory
) -> None:
    await make_satellite()
    async with http.get("/api/health"):
        pass
    async with http.get("/metrics") as response:
        text = await response.text()
    expected = 'groundstation_http_requests_total{method="GET",route="/api/health",status="200"}'
    assert expected in text


def test_the_start_up_line_never_shows_a_database_password(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(
        tmp_path, database_url="postgres://gs:hunter2-password@db.internal:5432/gs?password=q1")
    caplog.set_level(logging.INFO, logger="app.main")
    log_serving(create_app(settings), "http://127.0.0.1:3000")
    (record,) = [r for r in caplog.records if r.getMessage() == "serving"]
    assert record.database == "postgres://gs:***@db.internal:5432/gs"  # type: ignore[attr-defined]
    assert "hunter2" not in caplog.text
    assert "q1" not in str(vars(record))
