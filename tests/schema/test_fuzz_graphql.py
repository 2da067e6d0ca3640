"""Random bodies and random (schema-shaped) documents on /graphql never yield a 5xx or an
INTERNAL error: every refusal is a client error in the GraphQL shape."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import mutations, nodes, queries

from app.models.enums import GlobalRole
from app.schema import schema
from app.services.common.actors import CLI_ACTOR
from app.services.people.users import create_user
from tests.fixtures.people import PASSWORD
from tests.fixtures.threaded import ThreadedServer

FUZZ = settings(
    max_examples=150, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=16,
)
request_shaped = st.fixed_dictionaries({}, optional={
    "query": st.text(max_size=200) | json_values,
    "variables": json_values,
    "operationName": json_values,
    "extensions": json_values,
})
# Scalars hypothesis-graphql cannot make by itself: valid values and junk alike.
CUSTOM_SCALARS = {
    "DateTime": st.builds(nodes.String, st.datetimes().map(lambda moment: moment.isoformat() + "Z")
                                  | st.text(max_size=30)),
    "Date": st.builds(nodes.String, st.dates().map(str) | st.text(max_size=12)),
    "JSON": st.builds(nodes.String, st.text(max_size=10)),
}


class Client:
    def __init__(self, base_url: str, token: str | None = None) -> None:
        parts = urlsplit(base_url)
        self._connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
        self._headers = {"Content-Type": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"

    def post(self, body: bytes) -> tuple[int, Any]:
        self._connection.request("POST", "/graphql", body=body, headers=self._headers)
        response = self._connection.getresponse()
        raw = response.read()
        return response.status, json.loads(raw)


def assert_client_error_shape(status: int, answer: Any) -> None:
    assert status < 500, answer
    assert isinstance(answer, dict), answer
    for error in answer.get("errors") or []:
        assert error["extensions"]["code"] != "INTERNAL", error


def _admin_token(server: ThreadedServer) -> str:
    server.run(create_user(server.rt, email="fuzz@example.com", password=PASSWORD,
                           global_role=GlobalRole.GLOBAL_ADMIN, actor=CLI_ACTOR))
    status, answer = Client(server.base_url).post(json.dumps({
        "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) "
                 "{ token } }", "variables": {"e": "fuzz@example.com", "p": PASSWORD}}).encode())
    assert status == 200, answer
    token: str = answer["data"]["login"]["token"]
    return token


def test_random_bodies_never_5xx(threaded_server: ThreadedServer) -> None:
    client = Client(threaded_server.base_url)

    @FUZZ
    @given(json_values | request_shaped, st.binary(max_size=64))
    def check(body: Any, raw: bytes) -> None:
        assert_client_error_shape(*client.post(json.dumps(body).encode()))
        assert_client_error_shape(*client.post(raw))

    check()


def test_random_queries_and_mutations_never_fail_internally(
    threaded_server: ThreadedServer,
) -> None:
    client = Client(threaded_server.base_url, _admin_token(threaded_server))
    sdl = str(schema)
    # Mutations that would end the session the fuzzer is using are left out.
    mutation_fields = [name for name in schema._schema.mutation_type.fields  # type: ignore[union-attr]
                       if name not in {"logout", "changePassword"}]

    @FUZZ
    @given(queries(sdl, custom_scalars=CUSTOM_SCALARS)
           | mutations(sdl, fields=mutation_fields, custom_scalars=CUSTOM_SCALARS))
    def check(document: str) -> None:
        assert_client_error_shape(*client.post(json.dumps({"query": document}).encode()))

    check()
