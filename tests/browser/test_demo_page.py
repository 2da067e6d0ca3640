"""`groundstation demo` seen in a real browser (docs/operations.md §13): the demo's
administrator signs in and the page shows the simulated fleet online, live. With
GROUNDSTATION_SCREENSHOTS set to a directory, the README's picture is taken here."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.fixtures.browser import fill_login
from tests.fixtures.demo import running_demo

SATELLITES = 12
WAIT_MS = 60_000
# Set to a directory to keep a screenshot of the page (docs/screenshots/ in the repo).
SCREENSHOTS = os.environ.get("GROUNDSTATION_SCREENSHOTS")
# Long enough for the page to have seen two heartbeats of each satellite (sparklines).
SPARKLINE_WAIT_MS = 35_000


async def test_the_demo_fleet_shows_online_on_the_page(browser: Any, tmp_path: Path) -> None:
    async with running_demo(tmp_path, satellites=SATELLITES) as demo:
        page = await browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(WAIT_MS)
        await page.goto(f"{demo.url}/")
        await fill_login(page, "admin@demo.example", demo.password)
        await page.get_by_text(f"{SATELLITES} of the {SATELLITES} shown online").wait_for()
        assert await page.locator("tr[data-satellite]").count() == SATELLITES
        if SCREENSHOTS:
            await page.wait_for_timeout(SPARKLINE_WAIT_MS)
            await page.screenshot(path=str(Path(SCREENSHOTS) / "fleet.png"))
            await page.locator("tr[data-satellite]").filter(has_text="Acme").first.locator(
                "th a").click()
            await page.locator("figure.chart canvas").first.wait_for()
            await page.screenshot(path=str(Path(SCREENSHOTS) / "satellite.png"))
        await page.close()
    assert demo.exit_code == 0
