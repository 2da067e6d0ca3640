"""`GET /api/satellites/{id}/config` over real HTTP (docs/protocol.md §9; defects 2, 9)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict

from app.models import Team
from app.models.enums import SatelliteType
from app.runtime import Runtime
from app.services.mcp.satellite_config import DEFAULT_RESOURCE_LIMITS
from tests.fixtures.satellites import SatelliteFactory, TestSatellite

Json = dict[str, Any]


async def fetch(
    http: aiohttp.ClientSession, satellite: TestSatellite, headers: dict[str, str] | None = None
) -> tuple[int, CIMultiDict[str], bytes]:
    async with http.get(satellite.path("config"),
                        headers={**satellite.headers, **(headers or {})}) as response:
        return response.status, CIMultiDict(response.headers), await response.read()


async def test_config_carries_an_etag_and_is_byte_identical_when_refetched(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite()

    status, headers, body = await fetch(http, satellite)
    status_again, headers_again, body_again = await fetch(http, satellite)

    assert (status, status_again) == (200, 200)
    config = json.loads(body)
    assert headers["ETag"] == f'"{config["config_version"]}"'
    assert headers["Cache-Control"] == "no-cache"
    assert headers["Content-Type"].startswith("application/json")
    assert headers_again["ETag"] == headers["ETag"]
    assert body_again == body
    assert set(config) == {"mcp_servers", "satellite_config", "config_version"}


@pytest.mark.parametrize("form", ["{etag}", "W/{etag}", '"other", {etag}', "*"])
async def test_matching_if_none_match_gets_304_without_a_body(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, form: str
) -> None:
    satellite = await make_satellite()
    _, headers, _ = await fetch(http, satellite)

    status, headers_304, body = await fetch(
        http, satellite, {"If-None-Match": form.format(etag=headers["ETag"])}
    )

    assert status == 304
    assert body == b""
    assert headers_304["ETag"] == headers["ETag"]


async def test_a_stale_etag_gets_the_full_config(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite()

    status, _, body = await fetch(http, satellite, {"If-None-Match": '"0123456789abcdef"'})

    assert status == 200
    assert json.loads(body)["satellite_config"]["logging"] == {"level": "info"}


async def test_changed_overrides_change_the_etag(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, rt: Runtime
) -> None:
    satellite = await make_satellite()
    _, before, _ = await fetch(http, satellite)

    await rt.fleet.apply_admin_change(satellite.id, "test",
                                      config_overrides={"logging": {"level": "debug"}})
    status, after, body = await fetch(http, satellite, {"If-None-Match": before["ETag"]})

    assert status == 200  # the old ETag no longer matches
    assert after["ETag"] != before["ETag"]
    assert json.loads(body)["satellite_config"]["logging"] == {"level": "debug"}


async def test_team_limits_narrow_team_satellites_and_are_listed_for_global_ones(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory
) -> None:
    team = await Team.create(name="Acme", slug="acme", max_processes=3, max_cpu_percent=25.0)
    team_satellite = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=team.id)
    global_satellite = await make_satellite(satellite_type=SatelliteType.GLOBAL)

    _, _, team_body = await fetch(http, team_satellite)
    _, _, global_body = await fetch(http, global_satellite)

    narrowed = {**DEFAULT_RESOURCE_LIMITS, "max_processes": 3, "max_cpu_percent": 25.0}
    assert json.loads(team_body)["satellite_config"]["resource_limits"] == narrowed
    global_limits = json.loads(global_body)["satellite_config"]["resource_limits"]
    assert global_limits["max_processes"] == DEFAULT_RESOURCE_LIMITS["max_processes"]
    assert global_limits["team_limits"] == {team.id: narrowed}


async def test_changing_a_team_limit_changes_the_etag(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory
) -> None:
    team = await Team.create(name="Acme", slug="acme")
    satellite = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=team.id)
    _, before, _ = await fetch(http, satellite)

    await Team.filter(id=team.id).update(max_processes=2)
    _, after, _ = await fetch(http, satellite)

    assert after["ETag"] != before["ETag"]


async def test_reference_client_fetch_with_content_type_on_a_get_is_served(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite()
    reference_headers = {
        "Authorization": f"Bearer {satellite.api_key}",
        "Content-Type": "application/json",
        "User-Agent": "DeployStack-Satellite/0.1.0 (Node.js)",
        "Accept": "application/json, text/plain, */*",
        "Accept-Language": "en-US,en;q=0.9",
        "Accept-Encoding": "gzip, deflate, br",
        "Cache-Control": "no-cache",
        "Connection": "keep-alive",
    }

    async with http.get(satellite.path("config"), headers=reference_headers) as response:
        assert response.status == 200
        config = await response.json()

    assert config["mcp_servers"] == {}
    assert config["satellite_config"]["team_settings"]["isolation_level"] == "process"


async def test_another_satellites_config_is_forbidden(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory
) -> None:
    mine = await make_satellite()
    theirs = await make_satellite()

    async with http.get(theirs.path("config"), headers=mine.headers) as response:
        assert response.status == 403
        answer = await response.json()

    assert answer["error"] == "forbidden"
    assert "ETag" not in response.headers
