"""Every view of the dashboard, at 1280×800 and at a phone's width (docs/operations.md
§13): each loads with no script error and no error from the API, nothing is requested
from another host, and at the phone's width the page itself never scrolls sideways
(wide tables scroll inside their own box)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from app.models import McpServer
from app.models.enums import GlobalRole, SatelliteType
from tests.fixtures.browser import WAIT_MS, signed_in
from tests.fixtures.graphql import ClientFactory
from tests.fixtures.live import heartbeat
from tests.fixtures.mcp import InstallFactory
from tests.fixtures.people import TeamFactory
from tests.fixtures.satellites import SatelliteFactory
from tests.fixtures.server import RunningServer

SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


@pytest.mark.parametrize("size", SIZES)
async def test_every_view_loads_from_this_server_alone_and_fits_the_width(
    browser: Any, server: RunningServer, http: aiohttp.ClientSession, size: str,
    graphql_as: ClientFactory, make_team: TeamFactory, make_satellite: SatelliteFactory,
    catalog: dict[str, McpServer], install: InstallFactory,
) -> None:
    team = await make_team()
    await install(team.id)
    satellite = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=team.id)
    await heartbeat(http, satellite)
    admin = await graphql_as(global_role=GlobalRole.GLOBAL_ADMIN)
    here = urlsplit(server.url("/")).netloc
    page = await signed_in(browser, server, admin, viewport=SIZES[size])
    hosts: set[str] = set()
    problems: list[str] = []
    page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc)
            if request.url.startswith("http") else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda message: problems.append(message.text)
            if message.type == "error" else None)

    views = {f"/satellites/{satellite.id}": "Commands", f"/teams/{team.id}": "Installations",
             "/alerts": "Webhooks", "/account": "Change password", "/": "Fleet"}
    for path, heading in views.items():
        await page.goto(server.url(path))
        await page.get_by_role("heading", name=heading).first.wait_for(timeout=WAIT_MS)
        await page.wait_for_load_state("networkidle", timeout=WAIT_MS)
        said = await page.locator(".error").all_inner_texts()
        assert said == [], f"{path} says: {said}"  # the API refused none of its reads
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at {size} width"

    assert hosts == {here}
    assert problems == []
    await page.close()
