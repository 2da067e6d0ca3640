"""The alerts page in a real browser (docs/alerts.md): an alert opens live when a
satellite falls silent and resolves live when it heartbeats again; its team's
administrator acknowledges it from the page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from app.config import Settings
from app.models.enums import SatelliteType, TeamRole
from app.runtime import Runtime
from app.services.common.clock import ManualClock
from tests.fixtures.browser import WAIT_MS, signed_in
from tests.fixtures.graphql import ClientFactory
from tests.fixtures.live import heartbeat
from tests.fixtures.offline import end_start_up_grace, pass_threshold
from tests.fixtures.people import TeamFactory
from tests.fixtures.satellites import SatelliteFactory
from tests.fixtures.server import RunningServer, make_settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Offline detection runs every 0.1 s on the runtime's clock, which the test moves.
    return make_settings(tmp_path, heartbeat_interval=1, offline_threshold=1,
                         jobs_interval_seconds=0.1)


async def test_an_offline_alert_opens_is_acknowledged_and_resolves_on_the_page(
    browser: Any, server: RunningServer, rt: Runtime, clock: ManualClock,
    http: aiohttp.ClientSession, graphql_as: ClientFactory, make_team: TeamFactory,
    make_satellite: SatelliteFactory,
) -> None:
    end_start_up_grace(rt)
    team = await make_team()
    # Inactive until its first heartbeat, as a registered satellite is (an active one
    # that never sent one would be offline, and alerted, at once).
    satellite = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=team.id,
                                     active=False)
    await heartbeat(http, satellite)
    admin = await graphql_as(teams={team.id: TeamRole.TEAM_ADMIN})
    page = await signed_in(browser, server, admin, "/alerts", ready="Alerts")
    await page.get_by_text("No open alerts.").wait_for(timeout=WAIT_MS)

    pass_threshold(clock, rt)  # the satellite falls silent
    row = page.locator("tr[data-alert]").filter(has_text=satellite.name)
    await row.locator(".alert-state").get_by_text("open").wait_for(timeout=WAIT_MS)

    await row.get_by_role("button", name="Acknowledge").click()
    await row.locator(".alert-state").get_by_text("acknowledged").wait_for(timeout=WAIT_MS)

    await heartbeat(http, satellite)  # back: the alert resolves, live
    await row.locator(".alert-state").get_by_text("resolved").wait_for(timeout=WAIT_MS)
    assert await page.locator(".summary").inner_text() == "0 open or acknowledged"
    await page.close()


async def test_a_team_administrator_turns_a_rule_off_for_the_team(
    browser: Any, server: RunningServer, graphql_as: ClientFactory, make_team: TeamFactory,
) -> None:
    team = await make_team()
    admin = await graphql_as(teams={team.id: TeamRole.TEAM_ADMIN})
    page = await signed_in(browser, server, admin, "/alerts", ready="Alert rules")
    row = page.locator('tr[data-rule="RESOURCE_HIGH"]')

    await row.get_by_label("resource high parameters").fill("{not json")
    await row.get_by_role("button", name="Save").click()
    await row.get_by_role("alert").filter(has_text="not JSON").wait_for(timeout=WAIT_MS)

    await row.get_by_label("resource high parameters").fill('{"cpu_percent": 75}')
    await row.get_by_label("resource high enabled").uncheck()
    await row.get_by_role("button", name="Save").click()
    await row.get_by_role("button", name="Use the global settings").wait_for(timeout=WAIT_MS)

    rules = await admin.data("query($t: ID) { alertRules(teamId: $t) { rule enabled params "
                             "teamId } }", {"t": team.id})
    [resource] = [rule for rule in rules["alertRules"] if rule["rule"] == "RESOURCE_HIGH"]
    assert (resource["enabled"], resource["teamId"]) == (False, team.id)
    assert resource["params"]["cpu_percent"] == 75
    await page.close()
