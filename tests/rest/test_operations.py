from __future__ import annotations

import aiohttp

from tests.fixtures.satellites import SatelliteFactory


async def test_health_reports_database_reachable(http: aiohttp.ClientSession) -> None:
    async with http.get("/api/health") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok"}


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
