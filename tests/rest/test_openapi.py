"""`GET /api/openapi.json`: a valid OpenAPI 3.1 document built from the routes' own models."""

from __future__ import annotations

from typing import Any

import aiohttp
import pydantic
import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.versions import consts as versions
from openapi_spec_validator.versions.shortcuts import get_spec_version

from app.rest.openapi import OPENAPI_PATH, REF_PREFIX, openapi_document
from app.rest.pages import DASHBOARD_PATHS
from app.runtime import Runtime
from app.version import VERSION
from app.wire.commands import CommandResultRequest, PollQuery
from app.wire.events import EventsBatch
from app.wire.heartbeat import HeartbeatRequest
from app.wire.registration import RegistrationRequest
from app.wire.responses import ErrorResponse, RegistrationResponse
from tests.fixtures.people import TokenFactory
from tests.fixtures.satellites import SatelliteFactory
from tests.fixtures.server import RunningServer

# Not satellite REST: GraphQL and the people-facing SSE streams (docs/graphql.md §1, §6).
NOT_DOCUMENTED = ("/api/graphql", "/api/stream/", "/static/")
# The browser pages (docs/operations.md §13) are not part of the satellite API.
PAGES = frozenset({*DASHBOARD_PATHS, "/login"})

REQUEST_MODELS: dict[tuple[str, str], type[pydantic.BaseModel]] = {
    ("post", "/api/satellites/register"): RegistrationRequest,
    ("post", "/api/satellites/{satellite_id}/heartbeat"): HeartbeatRequest,
    ("post", "/api/satellites/{satellite_id}/command-result"): CommandResultRequest,
    ("post", "/api/satellites/{satellite_id}/events"): EventsBatch,
}


async def test_served_without_authentication_and_valid_openapi_3_1(
    http: aiohttp.ClientSession,
) -> None:
    async with http.get(OPENAPI_PATH) as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        document = await response.json()
    assert document == openapi_document()
    assert document["openapi"] == "3.1.0"
    assert get_spec_version(document) == versions.OPENAPIV31
    validate(document)  # raises on any violation of the 3.1 schema


def test_every_ref_points_into_components() -> None:
    document = openapi_document()
    schemas = document["components"]["schemas"]
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    assert refs
    for ref in refs:
        assert ref.startswith(REF_PREFIX), ref
        assert ref.removeprefix(REF_PREFIX) in schemas, ref
    assert "$defs" not in str(document)


def test_every_registered_satellite_route_is_documented(server: RunningServer) -> None:
    document = openapi_document()
    registered = set()
    for route in server.server.app.router.routes():
        path = route.resource.canonical if route.resource else ""
        if (route.method in ("HEAD", "OPTIONS", "*") or path.startswith(NOT_DOCUMENTED)
                or path in PAGES):
            continue
        registered.add((route.method.lower(), path))
    documented = {(method, path) for path, item in document["paths"].items() for method in item}
    assert registered == documented
    assert ("post", "/api/satellites/{satellite_id}/heartbeat") in registered


def test_satellite_routes_declare_auth_parameters_and_error_shape() -> None:
    paths = openapi_document()["paths"]
    for path, item in paths.items():
        for operation in item.values():
            if path.startswith("/api/satellites/{satellite_id}/"):
                assert operation["security"] == [{"satelliteApiKey": []}]
                names = {parameter["name"] for parameter in operation["parameters"]}
                assert "satellite_id" in names
                for status in ("401", "403", "429"):
                    schema = operation["responses"][status]["content"]["application/json"]
                    assert schema["schema"] == {"$ref": f"{REF_PREFIX}ErrorResponse"}
                assert "Retry-After" in operation["responses"]["429"]["headers"]
    assert paths["/api/satellites/register"]["post"]["security"] == [{"registrationToken": []}]
    poll = {parameter["name"]: parameter
            for parameter in paths["/api/satellites/{satellite_id}/commands"]["get"]["parameters"]}
    assert set(poll) == {"satellite_id", *PollQuery.model_fields}
    assert poll["limit"]["schema"] | {"default": 10} == {
        "type": "integer", "minimum": 1, "maximum": 50, "default": 10}
    config = paths["/api/satellites/{satellite_id}/config"]["get"]
    assert {"name": "If-None-Match", "in": "header"}.items() <= config["parameters"][1].items()
    assert "304" in config["responses"]


def test_request_bodies_are_the_models_the_routes_validate_with() -> None:
    document = openapi_document()
    schemas = document["components"]["schemas"]
    for (method, path), model in REQUEST_MODELS.items():
        body = document["paths"][path][method]["requestBody"]["content"]["application/json"]
        assert body["schema"] == {"$ref": f"{REF_PREFIX}{model.__name__}"}
        own = model.model_json_schema(ref_template=REF_PREFIX + "{model}")
        own.pop("$defs", None)
        if model is EventsBatch:  # items documented as EventIn (each checked on its own)
            own["properties"]["events"]["items"] = {"$ref": f"{REF_PREFIX}EventIn"}
        assert schemas[model.__name__] == own, model

BODY_MODELS: dict[str, type[pydantic.BaseModel]] = {
    "heartbeat": HeartbeatRequest, "command-result": CommandResultRequest, "events": EventsBatch,
}


async def _post(http: aiohttp.ClientSession, path: str, headers: dict[str, str], body: Any
                ) -> tuple[int, dict[str, Any]]:
    async with http.post(path, json=body, headers=headers) as response:
        return response.status, await response.json()


@pytest.mark.parametrize(("route", "body"), [
    ("heartbeat", {"status": "active"}),  # system_metrics missing
    ("heartbeat", {"status": "active", "system_metrics": {"cpu_usage_percent": "high",
                                                          "memory_usage_mb": 1}}),
    ("command-result", {"status": "completed"}),  # command_id missing
    ("command-result", {"command_id": "c1", "status": "done"}),
    ("events", {"events": []}),
    ("events", {"events": [{}] * 101}),
])
async def test_a_body_the_model_refuses_is_refused_by_the_route(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, route: str, body: Any,
) -> None:
    model = BODY_MODELS[route]
    with pytest.raises(pydantic.ValidationError):
        model.model_validate(body)
    satellite = await make_satellite()
    status, payload = await _post(http, satellite.path(route), satellite.headers, body)
    assert status == 400
    ErrorResponse.model_validate(payload)
    assert payload["error"] == "validation_failed"


async def test_registration_body_refused_by_model_and_route_accepted_when_valid(
    http: aiohttp.ClientSession, rt: Runtime, issue_token: TokenFactory,
) -> None:
    bad = {"name": "Short"}
    with pytest.raises(pydantic.ValidationError):
        RegistrationRequest.model_validate(bad)
    token = await issue_token()
    headers = {"Authorization": f"Bearer {token.token}"}
    status, payload = await _post(http, "/api/satellites/register", headers, bad)
    assert status == 400
    assert ErrorResponse.model_validate(payload).error == "validation_failed"

    good = {"name": "openapi-doc-satellite"}
    RegistrationRequest.model_validate(good)
    status, payload = await _post(http, "/api/satellites/register", headers, good)
    assert status == 200
    assert RegistrationResponse.model_validate(payload).satellite.name == good["name"]


async def test_a_query_the_model_refuses_is_refused_by_the_poll(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory,
) -> None:
    satellite = await make_satellite()
    for query in ({"limit": "0"}, {"limit": "51"}, {"wait": "31"}, {"wait": "nan"}):
        with pytest.raises(pydantic.ValidationError):
            PollQuery.model_validate(query)
        async with http.get(satellite.path("commands"), params=query,
                            headers=satellite.headers) as response:
            assert response.status == 400, query
            assert (await response.json())["error"] == "validation_failed"


async def test_the_document_states_the_running_version(http: aiohttp.ClientSession) -> None:
    async with http.get(OPENAPI_PATH) as response:
        document = await response.json()
    assert document["info"]["version"] == VERSION
    assert "request_id" in document["components"]["schemas"]["ErrorResponse"]["required"]
