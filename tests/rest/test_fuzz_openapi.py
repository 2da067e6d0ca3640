"""schemathesis against `/api/openapi.json` on a real server: no 5xx, responses as documented.

Every documented operation is fuzzed with valid (positive) and invalid (negative)
requests, a bounded and seeded number of examples each, over a real socket. The
satellite routes get a real active satellite's API key and its id in the path (so
requests reach the body and query checks instead of stopping at the binding rule);
every registration call gets a fresh single-use registration token.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.models.enums import CommandPriority, CommandType, SatelliteType, TokenScope
from app.rest.openapi import OPENAPI_PATH, openapi_document
from app.services.commands.queue import enqueue_command
from app.services.common.actors import CLI_ACTOR
from app.services.satellites.tokens import issue_registration_token
from tests.fixtures.satellites import TestSatellite, satellite_factory
from tests.fixtures.threaded import ThreadedServer

AnyCase = schemathesis.Case[Any]
MAX_EXAMPLES = 30  # per operation and generation mode
# Longest long poll a fuzzed `wait` may ask for, to keep the run short (the route allows 30 s).
MAX_WAIT = 0.2

CHECKS: list[Any] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

FUZZ = settings(
    max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.filter_too_much, HealthCheck.data_too_large],
)

OPERATIONS = sorted(
    (method.upper(), path)
    for path, item in openapi_document()["paths"].items()
    for method in item
)


def _fuzz_document(document: dict[str, Any]) -> dict[str, Any]:
    poll = document["paths"]["/api/satellites/{satellite_id}/commands"]["get"]
    for parameter in poll["parameters"]:
        if parameter["name"] == "wait":
            parameter["schema"]["maximum"] = MAX_WAIT
    return document


@dataclass(frozen=True)
class Fuzzed:
    server: ThreadedServer
    satellite: TestSatellite
    command_ids: list[str]


async def _global_satellite(server: ThreadedServer) -> TestSatellite:
    return await satellite_factory(server.rt)(satellite_type=SatelliteType.GLOBAL)


@pytest.fixture
def fuzzed(threaded_server: ThreadedServer) -> Fuzzed:
    server = threaded_server
    satellite = server.run(_global_satellite(server))
    command_ids = [  # something to poll and to report results on
        server.run(enqueue_command(
            server.rt, satellite_id=satellite.id, command_type=CommandType.HEALTH_CHECK,
            priority=priority, payload={"check_type": "connectivity"}, actor=CLI_ACTOR,
        )).id
        for priority in CommandPriority
    ]
    return Fuzzed(server, satellite, command_ids)


def _with_known_command(strategy: st.SearchStrategy[AnyCase], command_ids: list[str]
                        ) -> st.SearchStrategy[AnyCase]:
    """Results for real commands too (random ids only reach `command_not_found`)."""

    def use(case: AnyCase, command_id: str | None) -> AnyCase:
        if command_id is not None and isinstance(case.body, dict):
            case.body["command_id"] = command_id
        return case

    return st.builds(use, strategy, st.none() | st.sampled_from(command_ids))


def _auth_for(server: ThreadedServer, satellite: TestSatellite, path: str
              ) -> Callable[[], dict[str, str]]:
    if path == "/api/satellites/register":
        def fresh_token() -> dict[str, str]:
            issued = server.run(issue_registration_token(
                server.rt, scope=TokenScope.GLOBAL, team_id=None, hours=None,
                satellite_name=None, actor=CLI_ACTOR,
            ))
            return {"Authorization": f"Bearer {issued.token}"}
        return fresh_token
    if "{satellite_id}" in path:
        return lambda: {"Authorization": f"Bearer {satellite.api_key}"}
    return dict


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_schemathesis_finds_no_server_error_and_responses_match_the_document(
    fuzzed: Fuzzed, method: str, path: str,
) -> None:
    server, satellite = fuzzed.server, fuzzed.satellite
    with requests.get(server.base_url + OPENAPI_PATH, timeout=10) as served:
        assert served.status_code == 200
        document = served.json()
    assert document == openapi_document()
    schema = schemathesis.openapi.from_dict(_fuzz_document(document))
    operation = schema[path][method]
    path_parameters = {"satellite_id": satellite.id} if "{satellite_id}" in path else None
    auth = _auth_for(server, satellite, path)
    statuses: Counter[int] = Counter()
    session = requests.Session()
    documented = openapi_document()["paths"][path][method.lower()]
    modes = [schemathesis.GenerationMode.POSITIVE]
    if "requestBody" in documented or "parameters" in documented:
        modes.append(schemathesis.GenerationMode.NEGATIVE)  # something to make invalid
    strategies = [
        operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)
        for mode in modes
    ]
    if path.endswith("/command-result"):
        strategies = [_with_known_command(strategy, fuzzed.command_ids)
                      for strategy in strategies]

    for strategy in strategies:
        @FUZZ
        @given(case=strategy)
        def check(case: AnyCase) -> None:
            response = case.call(base_url=server.base_url, session=session, headers=auth(),
                                 timeout=15)
            statuses[response.status_code] += 1
            case.validate_response(response, checks=CHECKS)

        check()

    session.close()
    assert statuses, "no request was sent"
    assert not [status for status in statuses if status >= 500], statuses
    print(f"{method} {path}: {sum(statuses.values())} requests, statuses {dict(statuses)}")

