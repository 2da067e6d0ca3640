"""Changing one's password on the account page (docs/graphql.md §1): the new password
signs in, the old one no longer does, and a wrong current password is said on the page."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.fixtures.browser import WAIT_MS, signed_in
from tests.fixtures.graphql import LOGIN, ClientFactory, GraphQLClient, log_in
from tests.fixtures.people import PASSWORD
from tests.fixtures.server import RunningServer

NEW_PASSWORD = "a much better passphrase"


async def test_a_person_changes_their_password_on_the_page(
    browser: Any, server: RunningServer, http: aiohttp.ClientSession, graphql_as: ClientFactory,
) -> None:
    person = await graphql_as()
    assert person.user is not None
    page = await signed_in(browser, server, person, "/account", ready="Account")
    form = page.get_by_role("form", name="Change password")

    await form.get_by_label("Current password").fill("not my password")
    await form.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    await form.get_by_label("New password again").fill(NEW_PASSWORD)
    await form.get_by_role("button", name="Change password").click()
    await form.get_by_role("alert").filter(has_text="password").wait_for(timeout=WAIT_MS)

    await form.get_by_label("Current password").fill(PASSWORD)
    await form.get_by_role("button", name="Change password").click()
    await form.get_by_role("status").get_by_text("Password changed").wait_for(timeout=WAIT_MS)

    assert await log_in(http, person.user.email, NEW_PASSWORD)
    old = {"email": person.user.email, "password": PASSWORD}
    assert await GraphQLClient(http).error_code(LOGIN, old) == "UNAUTHENTICATED"
    await page.close()
