"""The GraphQL cost guard: linear in the document, before any standard rule, HTTP and websocket."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from graphql import get_introspection_query, parse

from app.schema import COST_LIMITS, MAX_TOKENS
from app.schema.cost import CostLimits, check_cost
from tests.fixtures.graphql import GraphQLClient
from tests.fixtures.live import live_socket


def fragment_bomb(levels: int) -> str:
    """Each fragment spreads the next one twice: 2**levels fields once expanded."""
    parts = ["query { ...F0 }"]
    parts += [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)]
    parts.append(f"fragment F{levels} on Query {{ me {{ id }} }}")
    return " ".join(parts)


def wide_bomb(levels: int) -> str:
    """Doubling under two distinct names per level: no field repeats, so only the expanded
    field count can refuse it."""
    parts = ["query { ...F0 }"]
    parts += [f"fragment F{i} on Query {{ l {{ ...F{i + 1} }} r {{ ...F{i + 1} }} }}"
              for i in range(levels)]
    parts.append(f"fragment F{levels} on Query {{ me {{ id }} }}")
    return " ".join(parts)


def messages(document: str, limits: CostLimits = COST_LIMITS) -> list[str]:
    return [error.message for error in check_cost(parse(document), limits)]


def nested(depth: int) -> str:
    """`depth` levels of fields: satellites → edges → node → … (valid or not, only depth counts)."""
    inner = "id"
    for _ in range(depth - 1):
        inner = f"a {{ {inner} }}"
    return f"{{ {inner} }}"


def test_a_30_level_fragment_bomb_is_measured_without_expanding_it() -> None:
    document = parse(fragment_bomb(30))
    started = time.process_time()
    errors = check_cost(document, COST_LIMITS)
    assert time.process_time() - started < 0.5  # 2**30 fields, measured once per fragment
    assert len(errors) == 1
    assert errors[0].extensions == {"code": "VALIDATION", "reason": "query_too_complex"}


def test_expanded_field_counts_refuse_a_bomb_of_distinct_fields() -> None:
    assert messages(wide_bomb(9)) == [
        f"Query selects more than {COST_LIMITS.max_fields} fields (fragments expanded)"]


def test_depth_counts_nested_fields_but_not_introspection() -> None:
    assert messages(nested(11)) == []
    assert messages(nested(12)) == [
        f"Query is nested deeper than {COST_LIMITS.max_depth} levels"]
    assert messages(get_introspection_query()) == []  # GraphiQL's schema query is deep


def test_aliases_are_counted_through_fragments() -> None:
    fragment = "fragment A on Query { " + " ".join(f"a{i}: me {{ id }}" for i in range(16)) + " }"
    assert messages("{ ...A } " + fragment) == []
    assert messages("{ ...A ...A } " + fragment) == [
        f"Query uses more than {COST_LIMITS.max_aliases} aliases"]


def test_repeating_one_field_is_bounded_by_the_comparisons_it_would_cost() -> None:
    assert messages("{ " + "me { id } " * 20 + "}") == []
    assert messages("{ " + "me { id email } " * 200 + "}")[0].startswith(
        "Query selects the same fields too many times")


def test_a_fragment_spreading_itself_is_refused_not_followed() -> None:
    assert messages("{ ...A } fragment A on Query { me { id } ...B } "
                    "fragment B on Query { ...A }") == ["Fragment 'A' spreads itself"]


def test_unused_fragments_are_measured_too() -> None:
    bomb = fragment_bomb(30).replace("query { ...F0 }", "{ me { id } }")
    assert messages(bomb)


# ---- over the wire -------------------------------------------------------------------


async def test_a_fragment_bomb_over_http_is_refused_while_health_answers(
    anonymous: GraphQLClient, http: aiohttp.ClientSession,
) -> None:
    async def health() -> int:
        async with http.get("/api/health") as response:
            return response.status

    bomb = asyncio.ensure_future(anonymous.execute(fragment_bomb(30)))
    assert await health() == 200
    result = await asyncio.wait_for(bomb, 10)

    assert result["errors"][0]["extensions"]["code"] == "VALIDATION"
    assert result.get("data") is None


async def test_a_fragment_bomb_over_a_websocket_is_refused(
    http: aiohttp.ClientSession, member: GraphQLClient,
) -> None:
    document = fragment_bomb(30).replace("query", "subscription", 1)
    async with live_socket(http, token=member.session_token) as socket:
        operation = await socket.subscribe(document)
        message = await socket.receive()
        assert message["id"] == operation
        assert message["type"] == "error"
        assert message["payload"][0]["extensions"]["code"] == "VALIDATION"


async def test_a_field_flood_stops_at_the_token_limit(anonymous: GraphQLClient) -> None:
    flood = "{" + " me{id}" * 5_000 + "}"  # 35 KB, under the body limit

    result = await anonymous.execute(flood)

    assert result["errors"][0]["extensions"]["code"] == "VALIDATION"
    assert f"more than {MAX_TOKENS} tokens" in result["errors"][0]["message"]


async def test_a_cheap_query_still_runs(anonymous: GraphQLClient) -> None:
    assert await anonymous.data("{ me { id } }") == {"me": None}


@pytest.fixture
async def member(graphql_as: object) -> GraphQLClient:
    client: GraphQLClient = await graphql_as()  # type: ignore[operator]
    return client
