"""`GET /api/openapi.json`: the OpenAPI 3.1 document of the satellite REST routes.

Built from the pydantic models the routes validate with (app/wire/*) and the
response models (app/wire/responses.py): pydantic v2 emits JSON Schema
2020-12, which OpenAPI 3.1 uses as is. All definitions live under
`components/schemas`; the document is built once and cached.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any

import pydantic
from aiohttp import web
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from app.version import VERSION
from app.wire.commands import CommandResultRequest, PollQuery
from app.wire.events import MAX_EVENTS, MIN_EVENTS, EventIn, EventsBatch
from app.wire.heartbeat import HeartbeatRequest
from app.wire.registration import RegistrationRequest
from app.wire.responses import (
    CommandResultResponse,
    ErrorResponse,
    EventsResponse,
    HealthResponse,
    HealthUnavailableResponse,
    HeartbeatResponse,
    PollResponse,
    RegistrationResponse,
    RegistrationStatusResponse,
    SatelliteConfigResponse,
)

OPENAPI_PATH = "/api/openapi.json"
REF_PREFIX = "#/components/schemas/"
SATELLITE = "/api/satellites/{satellite_id}"

_MODELS: list[tuple[type[pydantic.BaseModel], JsonSchemaMode]] = [
    (RegistrationRequest, "validation"),
    (HeartbeatRequest, "validation"),
    (CommandResultRequest, "validation"),
    (EventsBatch, "validation"),
    (EventIn, "validation"),
    (PollQuery, "validation"),
    (ErrorResponse, "serialization"),
    (HealthResponse, "serialization"),
    (HealthUnavailableResponse, "serialization"),
    (RegistrationStatusResponse, "serialization"),
    (RegistrationResponse, "serialization"),
    (HeartbeatResponse, "serialization"),
    (PollResponse, "serialization"),
    (CommandResultResponse, "serialization"),
    (SatelliteConfigResponse, "serialization"),
    (EventsResponse, "serialization"),
]

# Why each error status happens (docs/protocol.md §1, §3–§5).
_ERRORS: dict[int, str] = {
    400: "Validation failed (`error` contains `validation`)",
    401: "Unauthorized: missing, malformed or unknown key, or the satellite is disabled",
    403: "Forbidden: the key belongs to another satellite, or `ip_not_allowed`",
    404: "Not found",
    409: "Conflict",
    413: "Body too large (`validation_failed: body too large`)",
    429: "Rate limited (`rate limit exceeded`); see `Retry-After`",
    503: "The database is unreachable; retry later",
}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait",
                                "schema": {"type": "integer", "minimum": 1}}}


def _ref(model: type[pydantic.BaseModel]) -> dict[str, str]:
    return {"$ref": f"{REF_PREFIX}{model.__name__}"}


def _json(model: type[pydantic.BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _errors(*statuses: int, **overrides: str) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status in statuses:
        response = _json(ErrorResponse, overrides.get(f"e{status}", _ERRORS[status]))
        if status == 429:
            response["headers"] = copy.deepcopy(_RETRY_AFTER)
        responses[str(status)] = response
    return responses


def _body(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(model)}}}


def _satellite_id() -> dict[str, Any]:
    return {"name": "satellite_id", "in": "path", "required": True,
            "description": "The satellite's id; must be the one the API key belongs to",
            "schema": {"type": "string"}}


def _query_parameters(model: type[pydantic.BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF_PREFIX + "{model}")
    required = set(schema.get("required", []))
    parameters = []
    for name, field_schema in schema["properties"].items():
        field_schema = _without_null(field_schema)
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": name in required,
                                     "schema": field_schema}
        description = model.model_fields[name].description
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query value is never JSON null: `str | None = None` is an optional string."""
    schema = {key: value for key, value in schema.items() if key != "title"}
    branches = schema.get("anyOf")
    if isinstance(branches, list):
        kept = [branch for branch in branches if branch != {"type": "null"}]
        if len(kept) == 1:
            del schema["anyOf"]
            schema = {**kept[0], **schema}
    if schema.get("default", 0) is None:
        del schema["default"]
    return schema


_PARAMETER_NOTES = {
    "limit": "Most commands to claim (1-50)",
    "last_poll": "ISO time of the previous poll; accepted and ignored",
    "wait": "Long poll: hold an empty poll up to this many seconds (0-30)",
}


def _poll_parameters() -> list[dict[str, Any]]:
    parameters = _query_parameters(PollQuery)
    for parameter in parameters:
        parameter.setdefault("description", _PARAMETER_NOTES.get(parameter["name"], ""))
    return parameters


def _operations() -> dict[str, Any]:
    api_key: list[dict[str, list[str]]] = [{"satelliteApiKey": []}]
    satellite_errors = (401, 403, 429, 503)
    return {
        "/api/health": {"get": {
            "operationId": "health", "summary": "Liveness and database reachability",
            "security": [], "tags": ["operations"],
            "responses": {"200": _json(HealthResponse, "Up"),
                          "503": _json(HealthUnavailableResponse, "Database unreachable")},
        }},
        "/api/satellites/register/status": {"get": {
            "operationId": "registrationStatus", "summary": "The registration method",
            "security": [], "tags": ["registration"],
            "responses": {"200": _json(RegistrationStatusResponse, "Token-based registration")},
        }},
        "/api/satellites/register": {"post": {
            "operationId": "register",
            "summary": "Register (or re-register by name) and receive an API key",
            "description": "Type and team come from the registration token. Errors 401 carry "
                           "the registration codes of docs/protocol.md §3.",
            "security": [{"registrationToken": []}], "tags": ["registration"],
            "requestBody": _body(RegistrationRequest),
            "responses": {
                "200": _json(RegistrationResponse, "Registered; the API key is shown once"),
                **_errors(400, 401, 403, 409, 413, 429, 503,
                          e401="`registration_token_required`, `invalid_registration_token`, "
                               "`token_expired`, `token_already_used`, `token_invalid_scope`",
                          e403="`satellite_disabled`", e409="`satellite_name_taken`"),
            },
        }},
        f"{SATELLITE}/heartbeat": {"post": {
            "operationId": "heartbeat", "summary": "Metrics and process states",
            "description": "Repairs what it can (clamps, unknown enum values become "
                           "`unknown`, truncation) instead of refusing; activates an "
                           "inactive satellite. Never rate limited for a valid key.",
            "security": api_key, "tags": ["satellite"],
            "parameters": [_satellite_id()], "requestBody": _body(HeartbeatRequest),
            "responses": {"200": _json(HeartbeatResponse, "Recorded"),
                          **_errors(400, 413, *satellite_errors)},
        }},
        f"{SATELLITE}/commands": {"get": {
            "operationId": "pollCommands",
            "summary": "Claim pending commands (leases; long poll with `wait`)",
            "security": api_key, "tags": ["satellite"],
            "parameters": [_satellite_id(), *_poll_parameters()],
            "responses": {"200": _json(PollResponse, "Claimed commands (possibly none)"),
                          **_errors(400, *satellite_errors)},
        }},
        f"{SATELLITE}/command-result": {"post": {
            "operationId": "commandResult", "summary": "Report a command's outcome",
            "description": "`error` and `error_message` are both accepted. Never rate limited "
                           "for a valid key.",
            "security": api_key, "tags": ["satellite"],
            "parameters": [_satellite_id()], "requestBody": _body(CommandResultRequest),
            "responses": {
                "200": _json(CommandResultResponse, "Recorded (or a duplicate, or late)"),
                **_errors(400, 404, 409, 413, *satellite_errors,
                          e404="`command_not_found`", e409="`invalid_transition`"),
            },
        }},
        f"{SATELLITE}/config": {"get": {
            "operationId": "satelliteConfig", "summary": "Merged MCP server configuration",
            "security": api_key, "tags": ["satellite"],
            "parameters": [_satellite_id(), {
                "name": "If-None-Match", "in": "header", "required": False,
                "description": "A previous `ETag`: 304 when the configuration is unchanged",
                "schema": {"type": "string"},
            }],
            "responses": {
                "200": {**_json(SatelliteConfigResponse, "The configuration"),
                        "headers": {"ETag": {"description": "`\"<config_version>\"`",
                                             "schema": {"type": "string"}}}},
                "304": {"description": "Unchanged since the `If-None-Match` version"},
                **_errors(*satellite_errors),
            },
        }},
        f"{SATELLITE}/events": {"post": {
            "operationId": "ingestEvents", "summary": "Batched events, partial success",
            "description": f"{MIN_EVENTS}-{MAX_EVENTS} events. The batch is refused (400) only "
                           "for its envelope; each event is validated on its own "
                           "(`EventIn` plus the required `data` keys of its type) and a bad "
                           "one is reported in `failures`.",
            "security": api_key, "tags": ["satellite"],
            "parameters": [_satellite_id()], "requestBody": _body(EventsBatch),
            "responses": {"200": _json(EventsResponse, "Processed (see `failures`)"),
                          **_errors(400, 413, *satellite_errors)},
        }},
        "/metrics": {"get": {
            "operationId": "metrics", "summary": "Prometheus metrics",
            "description": "Needs `Authorization: Bearer <METRICS_TOKEN>` when that is set.",
            "security": [{}, {"metricsToken": []}], "tags": ["operations"],
            "responses": {
                "200": {"description": "Prometheus text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}}},
                **_errors(401),
            },
        }},
        OPENAPI_PATH: {"get": {
            "operationId": "openapi", "summary": "This document",
            "security": [], "tags": ["operations"],
            "responses": {"200": {"description": "OpenAPI 3.1",
                                  "content": {"application/json": {"schema": {
                                      "type": "object"}}}}},
        }},
    }


def _schemas() -> dict[str, Any]:
    _, top = models_json_schema(_MODELS, ref_template=REF_PREFIX + "{model}")
    schemas: dict[str, Any] = top["$defs"]
    # The batch envelope takes any items (each is checked on its own, see app/wire/events.py);
    # the document says what an item should be.
    events = schemas["EventsBatch"]["properties"]["events"]
    events["items"] = {"$ref": f"{REF_PREFIX}EventIn"}
    return schemas


def openapi_document() -> dict[str, Any]:
    """The document as a dict (a copy of the one built once)."""
    return copy.deepcopy(_build())


@cache
def _build() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Groundstation satellite API",
            "version": VERSION,
            "description": "The satellite REST protocol (DeployStack-compatible). Unknown "
                           "fields in request bodies are ignored. Error bodies are "
                           "`{success: false, error, message, details?, request_id}`. Every "
                           "response carries `X-Request-Id`: the request's own when it sent "
                           "a sane one (1-128 characters of `A-Za-z0-9._:+/=-`), else a new "
                           "one.",
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "tags": [{"name": "satellite"}, {"name": "registration"}, {"name": "operations"}],
        "paths": _operations(),
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "satelliteApiKey": {
                    "type": "http", "scheme": "bearer",
                    "description": "`deploystack_satellite_api_<global|team>_<32 chars>`",
                },
                "registrationToken": {
                    "type": "http", "scheme": "bearer",
                    "description": "`deploystack_satellite_<global|team>_<JWT>`, single use",
                },
                "metricsToken": {"type": "http", "scheme": "bearer"},
            },
        },
    }


@cache
def _document_bytes() -> bytes:
    return json.dumps(_build(), separators=(",", ":")).encode()


async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(body=_document_bytes(), content_type="application/json",
                        headers={"Cache-Control": "public, max-age=300"})
