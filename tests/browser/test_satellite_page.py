"""A satellite's page in a real browser (docs/operations.md §13): its events arrive live,
a command sent from the form changes status on the page as the satellite reports, the
administrator's actions work, and a team member gets no actions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import pytest

from app.models import Team
from app.models.enums import SatelliteType, TeamRole
from tests.fixtures.browser import WAIT_MS, signed_in
from tests.fixtures.graphql import ClientFactory
from tests.fixtures.live import heartbeat, poll_commands, post_events, report_result, server_logs
from tests.fixtures.mcp import InstallFactory
from tests.fixtures.people import TeamFactory
from tests.fixtures.satellites import SatelliteFactory, TestSatellite
from tests.fixtures.server import RunningServer


@dataclass(frozen=True)
class Scene:
    team: Team
    satellite: TestSatellite


@pytest.fixture
async def scene(make_team: TeamFactory, make_satellite: SatelliteFactory) -> Scene:
    """A team and one of its satellites."""
    team = await make_team()
    return Scene(team, await make_satellite(satellite_type=SatelliteType.TEAM, team_id=team.id))


PageAs = Callable[[TeamRole], Awaitable[Any]]


@pytest.fixture
def page_as(browser: Any, server: RunningServer, graphql_as: ClientFactory,
            scene: Scene) -> PageAs:
    """The satellite's page, signed in as a new member of its team in `role`."""

    async def open_page(role: TeamRole) -> Any:
        person = await graphql_as(teams={scene.team.id: role})
        return await signed_in(browser, server, person, f"/satellites/{scene.satellite.id}",
                               ready="Commands")

    return open_page


async def test_an_event_arrives_on_the_page_live(
    scene: Scene, page_as: PageAs, http: aiohttp.ClientSession,
) -> None:
    team, satellite = scene.team, scene.satellite
    page = await page_as(TeamRole.TEAM_USER)
    events = page.locator("ol.events")
    await events.get_by_text("No events yet.").wait_for(timeout=WAIT_MS)

    [event_id] = await post_events(http, satellite, [server_logs(team.id)])

    arrived = page.locator(f'li[data-event="{event_id}"]')  # no reload
    await arrived.get_by_text("mcp.server.logs").wait_for(timeout=WAIT_MS)
    await page.close()


async def test_a_command_sent_from_the_form_changes_status_as_the_satellite_reports(
    scene: Scene, page_as: PageAs, http: aiohttp.ClientSession,
) -> None:
    satellite = scene.satellite
    page = await page_as(TeamRole.TEAM_ADMIN)
    form = page.get_by_role("form", name="Send a command")
    await form.get_by_label("Command").select_option("RESTART")
    await form.get_by_label("Priority").select_option("HIGH")
    await form.get_by_role("button", name="Send command").click()
    row = page.locator("tr[data-command]").filter(has_text="restart")
    await row.get_by_text("pending").wait_for(timeout=WAIT_MS)

    status, polled = await poll_commands(http, satellite)
    assert status == 200
    [command] = polled["commands"]
    assert (command["command_type"], command["priority"]) == ("restart", "high")
    assert await row.get_attribute("data-command") == command["id"]
    await row.get_by_text("acknowledged").wait_for(timeout=WAIT_MS)  # delivery, live

    status, _ = await report_result(http, satellite, {
        "command_id": command["id"], "status": "failed", "error": "exit code 1"})
    assert status == 200
    await row.get_by_text("failed: exit code 1").wait_for(timeout=WAIT_MS)
    await page.close()


async def test_an_administrator_disables_and_enables_the_satellite_and_rotates_its_key(
    scene: Scene, page_as: PageAs, http: aiohttp.ClientSession,
) -> None:
    satellite = scene.satellite
    await heartbeat(http, satellite)  # so "enable" makes it active again
    page = await page_as(TeamRole.TEAM_ADMIN)
    page.on("dialog", lambda dialog: dialog.accept())  # "Disable …? Its key is refused"
    facts = page.locator("dl.facts").first
    await page.get_by_role("button", name="Disable").click()
    await facts.get_by_text("disabled").wait_for(timeout=WAIT_MS)
    async with http.post(satellite.path("heartbeat"), json={"status": "active"},
                         headers=satellite.headers) as refused:
        assert refused.status in (401, 403)

    await page.get_by_role("button", name="Enable").click()
    await facts.get_by_text("active", exact=True).wait_for(timeout=WAIT_MS)
    await page.get_by_role("button", name="Rotate key").click()
    shown = page.get_by_label("New API key")
    await shown.wait_for(timeout=WAIT_MS)
    # The key on the page is the satellite's new key.
    await heartbeat(http, replace(satellite, api_key=await shown.inner_text()))
    await page.close()


async def test_a_team_member_gets_no_actions(page_as: PageAs) -> None:
    page = await page_as(TeamRole.TEAM_USER)
    await page.get_by_role("heading", name="Events").wait_for(timeout=WAIT_MS)
    await page.wait_for_load_state("networkidle", timeout=WAIT_MS)  # every read answered
    assert await page.get_by_role("form", name="Send a command").count() == 0
    for action in ("Disable", "Rotate key", "Maintenance"):
        assert await page.get_by_role("button", name=action).count() == 0
    await page.close()


async def test_a_team_administrator_commands_a_global_satellite_for_their_installation(
    browser: Any, server: RunningServer, http: aiohttp.ClientSession,
    graphql_as: ClientFactory, make_team: TeamFactory, make_satellite: SatelliteFactory,
    install: InstallFactory,
) -> None:
    team, other = await make_team(), await make_team()
    ours = await install(team.id)
    await install(other.id)  # not theirs: never offered
    satellite = await make_satellite()  # global: serves every team
    admin = await graphql_as(teams={team.id: TeamRole.TEAM_ADMIN})
    page = await signed_in(browser, server, admin, f"/satellites/{satellite.id}",
                           ready="Commands")
    form = page.get_by_role("form", name="Send a command")
    choices = form.get_by_label("Installation").locator("option")
    await choices.first.wait_for(state="attached", timeout=WAIT_MS)  # comes with the installations
    assert await choices.all_inner_texts() == [ours.name]  # required: no "none"
    await form.get_by_label("Command").select_option("RESTART")
    await form.get_by_role("button", name="Send command").click()
    await page.locator("tr[data-command]").get_by_text("pending").wait_for(timeout=WAIT_MS)

    _, polled = await poll_commands(http, satellite)
    [command] = polled["commands"]
    assert command["payload"]["installation_id"] == ours.id
    assert command["payload"]["team_id"] == team.id
    assert await page.get_by_role("button", name="Rotate key").count() == 0  # global's own
    await page.close()
