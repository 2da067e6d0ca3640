"""The fleet page at `/` in a real browser (docs/operations.md §13): a satellite turns
online live when it heartbeats, and a team's member sees only what they may see."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from app.models.enums import GlobalRole, SatelliteType, TeamRole
from tests.fixtures.browser import WAIT_MS, signed_in
from tests.fixtures.graphql import ClientFactory
from tests.fixtures.live import heartbeat
from tests.fixtures.people import TeamFactory
from tests.fixtures.satellites import SatelliteFactory, TestSatellite
from tests.fixtures.server import RunningServer


async def test_a_satellite_turns_online_on_the_page_when_it_heartbeats(
    browser: Any, server: RunningServer, http: aiohttp.ClientSession,
    graphql_as: ClientFactory, make_team: TeamFactory, make_satellite: SatelliteFactory,
) -> None:
    team = await make_team()
    satellite = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=team.id,
                                     active=False)
    member = await graphql_as(teams={team.id: TeamRole.TEAM_USER})
    page = await signed_in(browser, server, member)
    row = page.locator(f'tr[data-satellite="{satellite.id}"]')
    await row.get_by_text("offline").wait_for(timeout=WAIT_MS)

    await heartbeat(http, satellite)
    await row.get_by_text("online", exact=True).wait_for(timeout=WAIT_MS)  # live, no reload
    assert await row.locator("td").nth(0).inner_text() == "active"
    await page.close()


@dataclass(frozen=True)
class MemberOfOneTeam:
    page: Any  # signed in as a member of the first team
    mine: TestSatellite  # the first team's satellite
    other: TestSatellite  # the second team's


@pytest.fixture
async def member_of_one_team(
    browser: Any, server: RunningServer, graphql_as: ClientFactory, make_team: TeamFactory,
    make_satellite: SatelliteFactory,
) -> AsyncIterator[MemberOfOneTeam]:
    """Two teams with a satellite each; the fleet page of a member of the first."""
    ours, theirs = await make_team(), await make_team()
    mine = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=ours.id)
    other = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=theirs.id)
    member = await graphql_as(teams={ours.id: TeamRole.TEAM_USER})
    page = await signed_in(browser, server, member)
    yield MemberOfOneTeam(page, mine, other)
    await page.close()


async def test_a_team_member_sees_no_other_teams_satellites(
    member_of_one_team: MemberOfOneTeam,
) -> None:
    page, mine, other = member_of_one_team.page, member_of_one_team.mine, member_of_one_team.other
    await page.locator(f'tr[data-satellite="{mine.id}"]').wait_for(timeout=WAIT_MS)
    assert await page.locator(f'tr[data-satellite="{other.id}"]').count() == 0
    assert other.name not in await page.content()


async def test_a_burst_of_changes_off_the_page_reads_the_page_once_or_twice(
    browser: Any, server: RunningServer, http: aiohttp.ClientSession,
    graphql_as: ClientFactory, make_satellite: SatelliteFactory,
) -> None:
    shown = await make_satellite(name="shown-1")
    hidden = [await make_satellite(name=f"hidden-{n}", active=False) for n in range(20)]
    admin = await graphql_as(global_role=GlobalRole.GLOBAL_ADMIN)
    page = await signed_in(browser, server, admin)
    await page.get_by_label("Name", exact=True).fill("shown")  # only one satellite on the page
    await page.locator(f'tr[data-satellite="{shown.id}"]').wait_for(timeout=WAIT_MS)
    await page.wait_for_timeout(1500)  # the search's own read is done
    reads: list[str] = []
    page.on("request", lambda request: reads.append(request.url)
            if request.method == "POST" and "satellites(" in (request.post_data or "") else None)

    for satellite in hidden:  # 20 activations: 20 status changes, none on the page
        await heartbeat(http, satellite)
    await page.wait_for_timeout(2500)

    assert 1 <= len(reads) <= 2, reads
    assert await page.locator("tbody tr").count() == 1
    await page.close()


async def test_a_satellite_opens_from_the_keyboard_and_another_teams_is_not_found(
    server: RunningServer, member_of_one_team: MemberOfOneTeam,
) -> None:
    page, mine, other = member_of_one_team.page, member_of_one_team.mine, member_of_one_team.other

    await page.get_by_role("link", name=mine.name).focus()
    await page.keyboard.press("Enter")
    await page.get_by_role("heading", name=mine.name).wait_for(timeout=WAIT_MS)
    assert page.url.endswith(f"/satellites/{mine.id}")
    await page.go_back()  # the address is the view: back is the fleet again
    await page.get_by_role("heading", name="Fleet").wait_for(timeout=WAIT_MS)

    await page.goto(server.url(f"/satellites/{other.id}"))
    await page.get_by_role("alert").filter(has_text="No such satellite").wait_for(
        timeout=WAIT_MS)
    assert other.name not in await page.content()
