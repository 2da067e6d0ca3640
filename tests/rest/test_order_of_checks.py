"""docs/protocol.md §1: auth 401 → disabled 401 → IP 403 → binding 403 → rate limit 429 →
body size 413 → body validation 400. When several apply, the first one answers."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from app.main import create_app
from app.models.enums import SatelliteStatus
from app.rest.context import RUNTIME_KEY
from app.runtime import Runtime
from tests.fixtures.satellites import SatelliteFactory, satellite_factory
from tests.fixtures.server import make_settings


async def test_missing_key_answers_401_before_looking_at_the_body(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite()
    async with http.post(satellite.path("heartbeat"), data=b"{not json") as response:
        assert response.status == 401
        assert "unauthorized" in (await response.json())["error"]


async def test_disabled_answers_401_before_the_allow_list(
    http: aiohttp.ClientSession, rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite()
    await rt.fleet.apply_admin_change(
        satellite.id, "test", status=SatelliteStatus.DISABLED, allowed_cidrs=["10.0.0.0/8"]
    )
    async with http.get(satellite.path("config"), headers=satellite.headers) as response:
        assert response.status == 401


async def test_allow_list_answers_before_binding(
    http: aiohttp.ClientSession, rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    satellite, other = await make_satellite(), await make_satellite()
    await rt.fleet.apply_admin_change(satellite.id, "test", allowed_cidrs=["10.0.0.0/8"])
    async with http.get(other.path("config"), headers=satellite.headers) as response:
        assert response.status == 403
        assert (await response.json())["error"] == "ip_not_allowed"


async def test_binding_answers_403_for_other_and_unknown_ids(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory
) -> None:
    satellite, other = await make_satellite(), await make_satellite()
    for path in (other.path("config"), "/api/satellites/0123456789abcdef0123456789abcdef/config"):
        async with http.get(path, headers=satellite.headers) as response:
            assert response.status == 403
            body = await response.json()
            assert body["error"] == "forbidden"
            assert body["message"] == "API key does not belong to this satellite"


async def test_binding_answers_before_the_rate_limit(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, poll_burst=1, poll_rate_per_second=0.01))
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        factory = satellite_factory(app[RUNTIME_KEY])
        satellite, other = await factory(), await factory()
        async with aiohttp.ClientSession(base_url=str(server.make_url("/"))) as http:
            async with http.get(satellite.path("commands"), headers=satellite.headers) as first:
                assert first.status == 200
            async with http.get(satellite.path("commands"), headers=satellite.headers) as limited:
                assert limited.status == 429
                assert "rate limit" in (await limited.json())["error"]
                assert int(limited.headers["Retry-After"]) >= 1
            async with http.get(other.path("commands"), headers=satellite.headers) as bound:
                assert bound.status == 403
    finally:
        await server.close()


async def test_body_size_answers_413_before_validation(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite()
    oversized = b"x" * (1024 * 1024 + 10)
    async with http.post(
        satellite.path("heartbeat"), data=oversized, headers=satellite.headers
    ) as response:
        assert response.status == 413
        assert (await response.json())["error"] == "validation_failed: body too large"


async def test_invalid_body_answers_400_with_validation(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite()
    async with http.post(
        satellite.path("heartbeat"), data=b"[1, 2]", headers=satellite.headers
    ) as response:
        assert response.status == 400
        assert "validation" in (await response.json())["error"]
