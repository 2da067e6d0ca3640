"""GraphiQL in a real browser (docs/operations.md §13): sign in through the page, run
`{ me { email } }`, and not one request leaves the server."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from tests.fixtures.browser import WAIT_MS, fill_login
from tests.fixtures.graphql import ClientFactory
from tests.fixtures.server import RunningServer


async def test_graphiql_signs_in_and_runs_a_query_with_nothing_from_elsewhere(
    browser: Any, server: RunningServer, graphql_as: ClientFactory,
) -> None:
    person = await graphql_as()
    assert person.user is not None
    base = server.url("/").rstrip("/")
    hosts: set[str] = set()
    page = await browser.new_page()
    page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))

    await page.goto(f"{base}/graphql")
    await page.wait_for_url("**/login?next=/graphql", timeout=WAIT_MS)  # no session yet
    await fill_login(page, person.user.email)
    await page.wait_for_url(f"{base}/graphql", timeout=WAIT_MS)
    await page.wait_for_load_state("networkidle", timeout=WAIT_MS)  # the schema is loaded
    # The editor fills itself after the page loads; running before that runs nothing.
    await page.locator(".graphiql-query-editor").get_by_text("globalRole").first.wait_for(
        timeout=WAIT_MS)
    await page.locator(".graphiql-execute-button").click(timeout=WAIT_MS)
    await page.locator(".graphiql-response").get_by_text(person.user.email).first.wait_for(
        timeout=WAIT_MS)

    assert hosts == {urlsplit(base).netloc}  # every request went to this server
    await page.close()


async def test_a_wrong_password_is_said_on_the_page(
    browser: Any, server: RunningServer, graphql_as: ClientFactory,
) -> None:
    person = await graphql_as()
    assert person.user is not None
    page = await browser.new_page()
    await page.goto(server.url("/login"))
    await fill_login(page, person.user.email, "not the password")
    alert = page.get_by_role("alert")
    await alert.filter(has_text="password").wait_for(timeout=WAIT_MS)
    assert page.url.endswith("/login")
    await page.close()
