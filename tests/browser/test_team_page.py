"""A team's page in a real browser (docs/operations.md §13): its administrator installs a
catalogue server, edits it into a new revision and rolls it back, and issues a
registration token that a satellite then registers with; a member sees no actions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from app.models import McpServer, Team
from app.models.enums import TeamRole
from tests.fixtures.browser import WAIT_MS, signed_in
from tests.fixtures.graphql import ClientFactory
from tests.fixtures.people import TeamFactory
from tests.fixtures.server import RunningServer

PageAs = Callable[[TeamRole], Awaitable[Any]]


@pytest.fixture
async def team(make_team: TeamFactory) -> Team:
    return await make_team()


@pytest.fixture
def page_as(browser: Any, server: RunningServer, graphql_as: ClientFactory,
            team: Team) -> PageAs:
    """The team's page, signed in as a new member of the team in `role`."""

    async def open_page(role: TeamRole) -> Any:
        person = await graphql_as(teams={team.id: role})
        return await signed_in(browser, server, person, f"/teams/{team.id}",
                               ready="Installations")

    return open_page


async def test_an_administrator_installs_edits_and_rolls_back_a_server(
    page_as: PageAs, catalog: dict[str, McpServer],
) -> None:
    page = await page_as(TeamRole.TEAM_ADMIN)
    page.on("dialog", lambda dialog: dialog.accept())  # "Restore revision 1 …?"

    await page.get_by_text("Install a catalogue server").click()
    form = page.get_by_role("form", name="Install a server")
    await form.get_by_label("Catalogue server").select_option(catalog["filesystem"].id)
    await form.get_by_label("Name (optional)").fill("files")
    await form.get_by_role("button", name="Install").click()
    row = page.locator("tr[data-installation]").filter(has_text="files")
    await row.get_by_text("ROOT_DIR is required").wait_for(timeout=WAIT_MS)  # required, not given

    await row.get_by_text("Edit", exact=True).click()
    edit = row.get_by_role("form", name="Edit files")
    await edit.get_by_label("Environment").fill('{"ROOT_DIR": "/srv/data"}')
    await edit.get_by_role("button", name="Save as a new revision").click()
    await row.locator("td.num").get_by_text("2", exact=True).wait_for(timeout=WAIT_MS)
    assert await row.get_by_text("ROOT_DIR is required").count() == 0

    await row.get_by_text("Revisions").click()
    await row.get_by_role("button", name="Roll back to #1").click()
    await row.locator("td.num").get_by_text("3", exact=True).wait_for(timeout=WAIT_MS)
    await row.get_by_text("ROOT_DIR is required").wait_for(timeout=WAIT_MS)  # #1 again
    await page.close()


async def test_a_token_issued_on_the_page_registers_a_satellite_of_the_team(
    page_as: PageAs, team: Team, http: aiohttp.ClientSession, graphql_as: ClientFactory,
) -> None:
    page = await page_as(TeamRole.TEAM_ADMIN)
    await page.get_by_text("Issue a registration token").click()
    await page.get_by_label("Satellite name (optional)").fill("edge-from-page-01")
    await page.get_by_role("button", name="Issue token").click()
    shown = page.get_by_label("Registration token")
    await shown.wait_for(timeout=WAIT_MS)
    token = await shown.inner_text()
    command = await page.locator("pre.command").inner_text()
    assert f"DEPLOYSTACK_REGISTRATION_TOKEN={token}" in command
    assert "DEPLOYSTACK_SATELLITE_NAME=edge-from-page-01" in command

    async with http.post("/api/satellites/register", json={"name": "edge-from-page-01"},
                         headers={"Authorization": f"Bearer {token}"}) as response:
        body = await response.json()
        assert response.status == 200, body
    admin = await graphql_as(teams={team.id: TeamRole.TEAM_ADMIN})
    satellite = await admin.data('query($id: ID!) { satellite(id: $id) { teamId } }',
                                 {"id": body["satellite"]["id"]})
    assert satellite["satellite"]["teamId"] == team.id
    await page.close()


async def test_a_member_sees_installations_but_no_actions(page_as: PageAs) -> None:
    page = await page_as(TeamRole.TEAM_USER)
    await page.get_by_text("Nothing installed.").wait_for(timeout=WAIT_MS)
    for action in ("Install a catalogue server", "Issue a registration token", "Members"):
        assert await page.get_by_text(action).count() == 0
    await page.close()
