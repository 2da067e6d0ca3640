"""Web-security rules of the people-facing endpoints (docs/graphql.md §1, §4, §7): CORS off by
default, JSON-only GraphQL posts, GraphiQL for signed-in browsers only, cost guards, no stack
traces."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from tests.fixtures.graphql import ClientFactory, GraphQLClient
from tests.fixtures.pages import assert_everything_loaded_is_served_here
from tests.fixtures.server import make_settings, running

PREFLIGHT = {"Origin": "https://ui.example.com", "Access-Control-Request-Method": "POST"}


async def test_cors_is_off_by_default(http: aiohttp.ClientSession) -> None:
    async with http.options("/graphql", headers=PREFLIGHT) as response:
        assert "Access-Control-Allow-Origin" not in response.headers
    async with http.post("/graphql", json={"query": "{ me { id } }"},
                         headers={"Origin": "https://ui.example.com"}) as response:
        assert "Access-Control-Allow-Origin" not in response.headers


async def test_cors_origins_allow_only_the_listed_origin(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, cors_origins=("https://ui.example.com",))
    async with running(settings) as (_, http):
        async with http.options("/graphql", headers=PREFLIGHT) as response:
            assert response.status == 204
            assert response.headers["Access-Control-Allow-Origin"] == "https://ui.example.com"
            assert response.headers["Access-Control-Allow-Credentials"] == "true"
        async with http.post("/graphql", json={"query": "{ me { id } }"},
                             headers={"Origin": "https://ui.example.com"}) as response:
            assert response.headers["Access-Control-Allow-Origin"] == "https://ui.example.com"
        async with http.post("/graphql", json={"query": "{ me { id } }"},
                             headers={"Origin": "https://evil.example.com"}) as response:
            assert "Access-Control-Allow-Origin" not in response.headers
        async with http.get("/api/health", headers={"Origin": "https://ui.example.com"}
                            ) as response:
            assert "Access-Control-Allow-Origin" not in response.headers


async def test_graphql_refuses_form_posts_and_gets(http: aiohttp.ClientSession) -> None:
    async with http.post("/graphql", data={"query": "mutation { logout }"}) as response:
        assert response.status in (400, 415)
    async with http.post("/graphql", data="{\"query\": \"{ me { id } }\"}",
                         headers={"Content-Type": "text/plain"}) as response:
        assert response.status in (400, 415)
    async with http.get("/graphql", params={"query": "{ me { id } }"}) as response:
        assert response.status in (400, 404, 405)


async def test_graphiql_is_for_signed_in_browsers_and_loads_nothing_from_elsewhere(
    http: aiohttp.ClientSession, graphql_as: ClientFactory,
) -> None:
    page = {"Accept": "text/html"}
    async with http.get("/graphql", headers=page, allow_redirects=False) as response:
        assert response.status == 303  # no session: sign in first, then back here
        assert response.headers["Location"] == "/login?next=/graphql"
    async with http.get("/graphql", allow_redirects=False) as response:
        assert response.status in (400, 404, 405)  # a script's GET is not a page request

    person = await graphql_as()
    async with http.get("/graphql", headers={**page, "Cookie": f"gs_session={person.token}"},
                        allow_redirects=False) as response:
        assert response.status == 200
        html = await response.text()
        policy = response.headers["Content-Security-Policy"]
    assert "Loading GraphiQL" in html
    assert "default-src 'self'" in policy
    assert "script-src 'self';" in policy
    await assert_everything_loaded_is_served_here(http, html)


async def test_alias_heavy_documents_are_refused_before_running(
    anonymous: GraphQLClient
) -> None:
    aliases = "{ " + " ".join(f"a{i}: me {{ id }}" for i in range(31)) + " }"
    result = await anonymous.execute(aliases)
    assert result["errors"][0]["extensions"]["code"] == "VALIDATION"
    assert "data" not in result or result["data"] is None
    fine = "{ " + " ".join(f"a{i}: me {{ id }}" for i in range(30)) + " }"
    assert "errors" not in await anonymous.execute(fine)


async def test_errors_carry_a_code_and_never_a_stack_trace(anonymous: GraphQLClient) -> None:
    result = await anonymous.execute("{ nonexistentField }")
    error = result["errors"][0]
    assert error["extensions"]["code"] == "VALIDATION"
    assert "Traceback" not in str(result)
    assert "stacktrace" not in str(error.get("extensions", {})).lower()


async def test_a_websocket_from_another_origin_is_refused_in_the_graphql_shape(
    http: aiohttp.ClientSession,
) -> None:
    async with http.get("/graphql", headers={
        "Origin": "https://evil.example.com", "Connection": "Upgrade", "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Protocol": "graphql-transport-ws",
    }) as response:
        assert response.status == 403
        body = await response.json()
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
