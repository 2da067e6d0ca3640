"""The browser pages (docs/operations.md §13): served by the server itself, from the
package's built files, with a policy that lets nothing load from another host."""

from __future__ import annotations

import re

import aiohttp
import pytest

from app.rest.pages import STATIC
from tests.fixtures.graphql import ClientFactory
from tests.fixtures.pages import assert_everything_loaded_is_served_here
from tests.fixtures.people import PASSWORD

PAGES = ["/", "/login", "/alerts", "/account", "/satellites/some-id", "/teams/some-id"]


@pytest.mark.parametrize("path", PAGES)
async def test_a_page_and_everything_it_names_come_from_this_server(
    http: aiohttp.ClientSession, path: str
) -> None:
    async with http.get(path) as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        html = await response.text()
        policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    await assert_everything_loaded_is_served_here(http, html)


def test_no_built_page_names_another_host() -> None:
    for page in STATIC.glob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert not re.search(r'(?:src|href)="(?:https?:)?//', text), page.name


async def test_the_login_page_signs_in_through_graphql_and_sets_the_session_cookie(
    http: aiohttp.ClientSession, graphql_as: ClientFactory
) -> None:
    # What the page's script does: the `login` mutation; the cookie then carries the session.
    person = await graphql_as()
    assert person.user is not None
    async with http.post("/graphql", json={
            "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) "
                     "{ user { email } } }",
            "variables": {"e": person.user.email, "p": PASSWORD}}) as response:
        assert response.status == 200
        cookie = response.cookies["gs_session"]
    assert cookie["httponly"]
    async with http.post("/graphql", json={"query": "{ me { email } }"},
                         headers={"Cookie": f"gs_session={cookie.value}"}) as response:
        assert (await response.json())["data"]["me"]["email"] == person.user.email
