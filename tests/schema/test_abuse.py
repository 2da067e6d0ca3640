"""Malformed GraphQL requests and argument values get GraphQL-shaped client errors, never 5xx."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from app.models.enums import GlobalRole
from tests.fixtures.graphql import ClientFactory, GraphQLClient
from tests.fixtures.live import live_socket

Json = dict[str, Any]


async def post_raw(http: aiohttp.ClientSession, body: bytes, token: str | None = None,
                   content_type: str = "application/json") -> tuple[int, Json]:
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with http.post("/graphql", data=body, headers=headers) as response:
        assert response.content_type == "application/json", await response.text()
        return response.status, await response.json()


def only_error(answer: Json) -> Json:
    assert list(answer) == ["errors"], answer
    (error,) = answer["errors"]
    assert "Traceback" not in json.dumps(answer)
    return dict(error)


@pytest.mark.parametrize(("body", "says"), [
    (b"\xff\xfe{}", "not valid UTF-8"),
    (b"5", "must be a JSON object, not a number"),
    (b"null", "must be a JSON object, not null"),
    (b"[]", "must be a JSON object, not an array"),
    (b"{not json", "not valid JSON"),
    (b"", "is empty"),
    (b'{"query": "query($v: JSON) { me { id } }", "variables": {"v": ' + b"[" * 5000
     + b"]" * 5000 + b"}}", "nested deeper than 64 levels"),
])
async def test_malformed_bodies_are_400_in_the_graphql_shape(
    http: aiohttp.ClientSession, body: bytes, says: str,
) -> None:
    status, answer = await post_raw(http, body)

    assert status == 400
    error = only_error(answer)
    assert error["extensions"]["code"] == "VALIDATION"
    assert says in error["message"], error["message"]


async def test_a_body_over_the_graphql_limit_is_413(http: aiohttp.ClientSession) -> None:
    document = '{ satellite(id: "' + "x" * 900_000 + '") { id } }'

    status, answer = await post_raw(http, json.dumps({"query": document}).encode())

    assert status == 413
    assert "exceeds" in only_error(answer)["message"]


async def test_non_json_content_types_answer_in_the_graphql_shape(
    http: aiohttp.ClientSession,
) -> None:
    status, answer = await post_raw(http, b"query=%7Bme%7Bid%7D%7D",
                                    content_type="application/x-www-form-urlencoded")
    assert status == 400
    assert only_error(answer)["extensions"]["code"] == "VALIDATION"


async def test_a_subscription_sent_over_post_is_a_validation_error(
    http: aiohttp.ClientSession, admin: GraphQLClient,
) -> None:
    body = json.dumps({"query": "subscription { satelliteStatusChanged { online } }"}).encode()

    status, answer = await post_raw(http, body, admin.session_token)

    assert status == 400
    assert only_error(answer)["extensions"]["code"] == "VALIDATION"


@pytest.fixture
async def admin(graphql_as: ClientFactory) -> GraphQLClient:
    return await graphql_as(global_role=GlobalRole.GLOBAL_ADMIN)


@pytest.mark.parametrize("bad_id", [
    "x" * 100_000,  # within the body limit, far longer than any id
    "\ud800",  # a lone surrogate: cannot be stored or compared in UTF-8
    "a\x00b",  # NUL: PostgreSQL refuses it in text
    "",
])
async def test_impossible_ids_are_not_found_never_internal(
    admin: GraphQLClient, bad_id: str,
) -> None:
    for query in ("query($id: ID!) { satellite(id: $id) { id } }",
                  "query($id: ID!) { team(id: $id) { id } }",
                  "query($id: ID!) { installation(id: $id) { id } }",
                  "query($id: ID!) { command(id: $id) { id } }"):
        result = await admin.execute(query, {"id": bad_id})
        assert "errors" not in result or result["errors"][0]["extensions"]["code"] in (
            "NOT_FOUND", "VALIDATION"), result
        assert "INTERNAL" not in json.dumps(result)


async def test_a_lone_surrogate_in_the_document_is_a_client_error(admin: GraphQLClient) -> None:
    result = await admin.execute('{ satellite(id: "\\ud800") { id } }')
    assert "INTERNAL" not in json.dumps(result)
    assert result.get("data") in (None, {"satellite": None})


@pytest.mark.parametrize("value", ["notadate", "2026-13-45T99:00:00Z", "", 5, True])
async def test_bad_date_times_are_validation_errors(
    admin: GraphQLClient, value: object,
) -> None:
    result = await admin.execute(
        "query($from: DateTime) { usage(teamId: \"t\", from: $from) { toolCalls } }",
        {"from": value})
    assert result["errors"][0]["extensions"]["code"] == "VALIDATION", result
    result = await admin.execute(f"{{ usage(teamId: \"t\", from: {json.dumps(value)}) "
                                 "{ toolCalls } }")
    assert result["errors"][0]["extensions"]["code"] == "VALIDATION", result


async def test_a_websocket_message_over_the_body_limit_closes_the_socket(
    http: aiohttp.ClientSession, admin: GraphQLClient,
) -> None:
    async with live_socket(http, token=admin.session_token) as socket:
        await socket.ws.send_str(json.dumps({"id": "1", "type": "subscribe", "payload": {
            "query": "subscription { satelliteStatusChanged { online } }",
            "variables": {"pad": "x" * 200_000}}}))
        assert await socket.closed_with() == 1009  # message too big
