"""Every answer of `/graphql` has the GraphQL error shape and the request's id
(docs/graphql.md §4)."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import pytest

from tests.fixtures.graphql import GraphQLClient

Json = dict[str, Any]


@pytest.mark.parametrize(("method", "body", "headers", "status", "code"), [
    ("POST", b"{not json", {"Content-Type": "application/json"}, 400, "VALIDATION"),
    ("POST", b"", {"Content-Type": "application/json"}, 400, "VALIDATION"),
    ("POST", b'{"query": "{ me { id } }"}', {"Content-Type": "text/plain"}, 400, "VALIDATION"),
    ("POST", b"query=%7Bme%7D", {"Content-Type": "application/x-www-form-urlencoded"}, 400,
     "VALIDATION"),
    ("POST", b'{"query": "' + b"x" * 200_000 + b'"}', {"Content-Type": "application/json"},
     413, "VALIDATION"),
    ("GET", b"", {"Accept": "*/*"}, 400, "VALIDATION"),  # a script's GET: no page, no query
    ("GET", b"", {"Accept": "application/json"}, 400, "VALIDATION"),
    ("PUT", b"{}", {"Content-Type": "application/json"}, 405, "VALIDATION"),
])
async def test_refused_requests_answer_in_the_graphql_shape_with_the_request_id(
    http: aiohttp.ClientSession, method: str, body: bytes, headers: dict[str, str],
    status: int, code: str,
) -> None:
    async with http.request(method, "/graphql", data=body, headers=headers) as response:
        assert response.status == status
        assert response.content_type == "application/json"
        answer: Json = await response.json()
        request_id = response.headers["X-Request-Id"]
    assert list(answer) == ["errors"]
    (error,) = answer["errors"]
    assert isinstance(error["message"], str)
    assert error["message"]
    assert error["extensions"]["code"] == code
    assert error["extensions"]["requestId"] == request_id
    assert "Error:" not in error["message"]  # no Python class names


async def test_execution_errors_carry_the_request_id_in_extensions_and_log_line(
    http: aiohttp.ClientSession, anonymous: GraphQLClient, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="app.graphql")
    async with http.post("/graphql", json={"query": "{ me { id } nonexistentField }"},
                         headers={"X-Request-Id": "trace-42"}) as response:
        answer = await response.json()
        assert response.headers["X-Request-Id"] == "trace-42"
    assert answer["errors"][0]["extensions"]["requestId"] == "trace-42"
    assert answer["errors"][0]["extensions"]["code"] == "VALIDATION"
    logged = [record for record in caplog.records if record.name == "app.graphql"]
    assert logged
    assert {getattr(record, "request_id", None) for record in logged} == {"trace-42"}
