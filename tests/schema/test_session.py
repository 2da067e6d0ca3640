"""Logging in, `me`, logout and password change over real HTTP (docs/graphql.md §1, §3)."""

from __future__ import annotations

import asyncio
from ipaddress import ip_network
from pathlib import Path

import aiohttp

from app.config import Settings
from app.models.enums import GlobalRole, TeamRole
from app.runtime import Runtime
from app.schema.context import SESSION_COOKIE
from app.services.common.actors import CLI_ACTOR
from app.services.people.teams import add_team_member, create_team, remove_team_member
from app.services.people.users import create_user
from tests.fixtures.graphql import LOGIN, ClientFactory, GraphQLClient, log_in
from tests.fixtures.people import PASSWORD, UserFactory
from tests.fixtures.server import RunningServer, eventually, make_settings, running

ME = "{ me { id email globalRole } }"


async def test_login_returns_a_token_that_identifies_the_user(
    anonymous: GraphQLClient, make_user: UserFactory, http: aiohttp.ClientSession
) -> None:
    user = await make_user(global_role=GlobalRole.GLOBAL_ADMIN)

    data = await anonymous.data(LOGIN, {"email": user.email.upper(), "password": PASSWORD})

    assert data["login"]["user"] == {"id": user.id, "email": user.email,
                                     "globalRole": "GLOBAL_ADMIN"}
    me = await GraphQLClient(http, data["login"]["token"]).data(ME)
    assert me["me"]["id"] == user.id


async def test_login_sets_an_http_only_session_cookie_that_works_alone(
    make_user: UserFactory, http: aiohttp.ClientSession
) -> None:
    user = await make_user()
    async with http.post("/graphql", json={"query": LOGIN, "variables": {
            "email": user.email, "password": PASSWORD}}) as response:
        cookie = response.cookies[SESSION_COOKIE]
        assert cookie["httponly"]
        assert cookie["samesite"] == "Lax"
        assert response.headers["Set-Cookie"].count("HttpOnly") == 1

    async with http.post("/graphql", json={"query": ME},
                         cookies={SESSION_COOKIE: cookie.value}) as response:
        assert (await response.json())["data"]["me"]["email"] == user.email


async def test_wrong_password_and_unknown_email_get_the_same_answer(
    anonymous: GraphQLClient, make_user: UserFactory
) -> None:
    user = await make_user()
    wrong = await anonymous.execute(LOGIN, {"email": user.email, "password": "nope-nope"})
    unknown = await anonymous.execute(LOGIN, {"email": "nobody@example.com",
                                              "password": "nope-nope"})

    for result in (wrong, unknown):
        assert result["data"] is None
        assert result["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert wrong["errors"][0]["message"] == unknown["errors"][0]["message"]


async def test_anonymous_me_is_null_and_other_fields_need_a_login(
    anonymous: GraphQLClient
) -> None:
    assert (await anonymous.data(ME))["me"] is None
    assert await anonymous.error_code("{ teams { id } }") == "UNAUTHENTICATED"


async def test_logout_ends_the_session(graphql_as: ClientFactory) -> None:
    client = await graphql_as()

    assert (await client.data("mutation { logout }"))["logout"] is True

    assert (await client.data(ME))["me"] is None


async def test_changing_the_password_ends_the_other_sessions_only(
    graphql_as: ClientFactory, http: aiohttp.ClientSession
) -> None:
    client = await graphql_as()
    assert client.user is not None
    other = GraphQLClient(http, (await GraphQLClient(http).data(
        LOGIN, {"email": client.user.email, "password": PASSWORD}))["login"]["token"])

    changed = await client.data(
        "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, "
        "newPassword: $n) }", {"c": PASSWORD, "n": "a whole new passphrase"})

    assert changed["changePassword"] is True
    assert (await client.data(ME))["me"] is not None
    assert (await other.data(ME))["me"] is None
    assert await GraphQLClient(http).error_code(
        LOGIN, {"email": client.user.email, "password": PASSWORD}) == "UNAUTHENTICATED"


async def test_repeated_failed_logins_are_rate_limited(
    anonymous: GraphQLClient, make_user: UserFactory
) -> None:
    user = await make_user()
    codes = [await anonymous.error_code(LOGIN, {"email": user.email, "password": "wrong-pass"})
             for _ in range(12)]
    assert codes[0] == "UNAUTHENTICATED"
    assert codes[-1] == "RATE_LIMITED"
    # even the right password is refused while limited
    assert await anonymous.error_code(
        LOGIN, {"email": user.email, "password": PASSWORD}) == "RATE_LIMITED"


async def test_concurrent_wrong_logins_are_checked_at_most_the_limit_times(
    anonymous: GraphQLClient, make_user: UserFactory, rt: Runtime,
) -> None:
    user = await make_user()
    limit = rt.settings.login_failure_limit

    codes = await asyncio.gather(*(
        anonymous.error_code(LOGIN, {"email": user.email, "password": f"wrong-{n}"})
        for n in range(40)))

    assert codes.count("UNAUTHENTICATED") <= limit  # checked against the password
    assert codes.count("RATE_LIMITED") >= 40 - limit
    assert set(codes) == {"UNAUTHENTICATED", "RATE_LIMITED"}


async def test_a_removed_member_loses_the_team_at_once_despite_the_session_cache(
    tmp_path: Path,
) -> None:
    # The cache would keep the session for an hour: only the bus eviction can end it.
    async with running(make_settings(tmp_path, session_cache_seconds=3600)) as (rt, http):
        team = await create_team(rt, name="Cached", slug="cached", admin_email=None,
                                 actor=CLI_ACTOR)
        user = await create_user(rt, email="cached@example.com", password=PASSWORD,
                                 global_role=GlobalRole.GLOBAL_USER, actor=CLI_ACTOR)
        await add_team_member(rt, team.id, user.id, TeamRole.TEAM_USER, actor=CLI_ACTOR)
        member = GraphQLClient(http, await log_in(http, user.email), user)
        assert [t["id"] for t in (await member.data("{ teams { id } }"))["teams"]] == [team.id]

        await remove_team_member(rt, team.id, member.user_id, actor=CLI_ACTOR)

        async def gone() -> bool:
            return not (await member.data("{ teams { id } }"))["teams"]

        await eventually(gone)



async def test_the_cookie_is_secure_behind_a_trusted_https_proxy(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, trusted_proxies=(ip_network("127.0.0.0/8"),))
    async with running(settings) as (rt, http):
        user = await create_user(rt, email="proxy@example.com", password=PASSWORD,
                                 global_role=GlobalRole.GLOBAL_USER, actor=CLI_ACTOR)
        for proto, secure in (("https", True), ("http", False)):
            async with http.post("/graphql", json={"query": LOGIN, "variables": {
                    "email": user.email, "password": PASSWORD}},
                    headers={"X-Forwarded-Proto": proto}) as response:
                assert bool(response.cookies[SESSION_COOKIE]["secure"]) is secure


async def test_an_untrusted_peer_cannot_claim_https(
    http: aiohttp.ClientSession, make_user: UserFactory
) -> None:
    user = await make_user()
    async with http.post("/graphql", json={"query": LOGIN, "variables": {
            "email": user.email, "password": PASSWORD}},
            headers={"X-Forwarded-Proto": "https"}) as response:
        assert not response.cookies[SESSION_COOKIE]["secure"]


async def test_the_cookie_is_renewed_on_each_use_by_the_cookie_alone(
    server: RunningServer, settings: Settings, make_user: UserFactory,
) -> None:
    user = await make_user()
    # No cookie jar: each request carries exactly the headers given here.
    async with aiohttp.ClientSession(base_url=server.url("/"),
                                     cookie_jar=aiohttp.DummyCookieJar()) as http:
        token = await log_in(http, user.email)
        by_cookie = {"Cookie": f"{SESSION_COOKIE}={token}"}
        async with http.post("/graphql", json={"query": ME}, headers=by_cookie) as response:
            renewed = response.cookies[SESSION_COOKIE]
        assert renewed.value == token  # the same session, a fresh lifetime
        assert int(renewed["max-age"]) == settings.session_idle_seconds
        assert renewed["httponly"]

        async with http.post("/graphql", json={"query": ME},
                             headers={"Authorization": f"Bearer {token}"}) as response:
            assert SESSION_COOKIE not in response.cookies  # a script's header: no cookie
        async with http.post("/graphql", json={"query": ME},
                             headers={"Cookie": f"{SESSION_COOKIE}=not-a-session"}) as response:
            assert SESSION_COOKIE not in response.cookies
        async with http.post("/graphql", json={"query": "mutation { logout }"},
                             headers=by_cookie) as response:
            assert response.cookies[SESSION_COOKIE].value == ""  # deleted, not renewed
