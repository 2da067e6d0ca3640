"""The MCP server catalogue: validated import by slug, lookup (docs/catalog.md)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from app.errors import NotFound, ValidationError
from app.models import AuditEntry, McpServer
from app.models.enums import TransportType
from app.runtime import Runtime
from app.services.common.actors import CLI_ACTOR
from app.services.mcp.catalog import get_server_by_slug, import_catalog, list_servers
from app.services.mcp.config_merge import SCHEMA_FIELDS

# A small catalog file in the format of docs/catalog.md.
DESIGN_EXAMPLE = """
{"servers": [
  {"slug": "filesystem", "name": "Filesystem", "transport_type": "stdio",
   "command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem"],
   "env": {"LOG_LEVEL": "info"},
   "team_env_schema": [{"name": "ROOT_DIR", "required": true}],
   "user_env_schema": [{"name": "API_TOKEN", "secret": true}]},
  {"slug": "web-search", "name": "Web Search", "transport_type": "http",
   "url": "https://mcp.example.com/search", "headers": {"X-Client": "groundstation"},
   "team_headers_schema": [{"name": "Authorization", "secret": true}]}
]}
"""


def example() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DESIGN_EXAMPLE)
    return document


def stdio(slug: str = "tool", **fields: Any) -> dict[str, Any]:
    return {"slug": slug, "name": slug.title(), "transport_type": "stdio", "command": "npx",
            **fields}


async def problems_of(rt: Runtime, document: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as raised:
        await import_catalog(rt, document, actor=CLI_ACTOR)
    assert raised.value.details is not None
    return {item["field"]: item["message"] for item in raised.value.details}


async def test_the_design_example_imports_as_is(rt: Runtime) -> None:
    result = await import_catalog(rt, example(), actor=CLI_ACTOR)
    assert (result.created, result.updated, result.imported) == (2, 0, 2)

    filesystem = await get_server_by_slug("filesystem")
    assert filesystem.transport_type is TransportType.STDIO
    assert filesystem.command == "npx"
    assert filesystem.args == ["-y", "@modelcontextprotocol/server-filesystem"]
    assert filesystem.env == {"LOG_LEVEL": "info"}
    assert filesystem.team_env_schema == [{"name": "ROOT_DIR", "required": True}]
    assert filesystem.user_env_schema == [{"name": "API_TOKEN", "secret": True}]
    assert filesystem.url is None

    search = await get_server_by_slug("web-search")
    assert search.transport_type is TransportType.HTTP
    assert search.url == "https://mcp.example.com/search"
    assert search.headers == {"X-Client": "groundstation"}
    assert search.team_headers_schema == [{"name": "Authorization", "secret": True}]
    assert [server.slug for server in await list_servers()] == ["filesystem", "web-search"]

    audit = await AuditEntry.get(action="catalog.imported")
    assert audit.details["created"] == 2
    assert audit.details["updated"] == 0


async def test_reimport_updates_by_slug_without_new_rows(rt: Runtime) -> None:
    await import_catalog(rt, example(), actor=CLI_ACTOR)
    before = {server.slug: server.id for server in await list_servers()}

    changed = example()
    changed["servers"][0]["args"] = ["-y", "other-package"]
    del changed["servers"][0]["env"]  # an omitted field is reset: the file is the template
    changed["servers"].append(stdio("extra", timeout_ms=5000))
    result = await import_catalog(rt, changed, actor=CLI_ACTOR)
    assert (result.created, result.updated) == (1, 2)

    again = await import_catalog(rt, changed, actor=CLI_ACTOR)
    assert (again.created, again.updated) == (0, 3)
    assert await McpServer.all().count() == 3
    after = {server.slug: server.id for server in await list_servers()}
    assert {slug: after[slug] for slug in before} == before  # same rows, updated in place
    filesystem = await get_server_by_slug("filesystem")
    assert filesystem.args == ["-y", "other-package"]
    assert filesystem.env == {}
    assert filesystem.updated_at > filesystem.created_at
    assert (await get_server_by_slug("extra")).timeout_ms == 5000
    counts = [(entry.details["created"], entry.details["updated"])
              for entry in await AuditEntry.filter(action="catalog.imported").order_by("id")]
    assert counts == [(2, 0), (1, 2), (0, 3)]


async def test_an_empty_catalog_imports_nothing(rt: Runtime) -> None:
    result = await import_catalog(rt, {"servers": []}, actor=CLI_ACTOR)
    assert result.imported == 0
    assert await list_servers() == []


async def test_unknown_slug_is_not_found(rt: Runtime) -> None:
    with pytest.raises(NotFound):
        await get_server_by_slug("missing")


INVALID_SERVERS: list[tuple[str, dict[str, Any], str, str]] = [
    ("slug-pattern", stdio("Bad_Slug"), "slug", "a-z"),
    ("slug-one-char", stdio("a"), "slug", "a-z"),
    ("slug-leading-dash", stdio("-tool"), "slug", "a-z"),
    ("slug-missing", {"name": "X", "transport_type": "stdio", "command": "x"}, "slug", "a-z"),
    ("name-missing", {"slug": "tool", "transport_type": "stdio", "command": "x"}, "name",
     "non-empty"),
    ("name-blank", stdio(name="  "), "name", "non-empty"),
    ("name-too-long", stdio(name="n" * 201), "name", "at most 200"),
    ("transport-unknown", stdio(transport_type="websocket"), "transport_type", "stdio, http"),
    ("transport-upper-case", stdio(transport_type="STDIO"), "transport_type", "stdio, http"),
    ("stdio-without-command", {"slug": "tool", "name": "T", "transport_type": "stdio"},
     "command", "non-empty"),
    ("http-without-url", {"slug": "tool", "name": "T", "transport_type": "http"}, "url",
     "non-empty"),
    ("sse-with-ftp-url", stdio(transport_type="sse", url="ftp://example.com/x"), "url",
     "http:// or https://"),
    ("http-url-without-host", stdio(transport_type="http", url="https:///path"), "url",
     "with a host"),
    ("http-url-bad-port", stdio(transport_type="http", url="http://example.com:99999/"), "url",
     "not a valid URL"),
    ("http-url-not-a-string", stdio(transport_type="http", url=42), "url", "non-empty"),
    ("args-not-a-list", stdio(args="-y"), "args", "list of strings"),
    ("args-with-a-number", stdio(args=["-y", 3]), "args", "list of strings"),
    ("env-not-an-object", stdio(env=["A=1"]), "env", "object of string values"),
    ("env-number-value", stdio(env={"PORT": 8080}), "env.PORT", "must be a string"),
    ("headers-null-value", stdio(headers={"X-A": None}), "headers.X-A", "must be a string"),
    ("query-params-bool-value", stdio(url_query_params={"q": True}), "url_query_params.q",
     "must be a string"),
    ("timeout-zero", stdio(timeout_ms=0), "timeout_ms", "positive integer"),
    ("timeout-negative", stdio(timeout_ms=-5), "timeout_ms", "positive integer"),
    ("timeout-float", stdio(timeout_ms=1.5), "timeout_ms", "positive integer"),
    ("timeout-bool", stdio(timeout_ms=True), "timeout_ms", "positive integer"),
    ("timeout-string", stdio(timeout_ms="1000"), "timeout_ms", "positive integer"),
    ("description-not-a-string", stdio(description=5), "description", "must be a string"),
    ("unknown-field", stdio(transport="stdio"), "transport", "not a catalog field"),
]


@pytest.mark.parametrize(("entry", "field", "fragment"),
                         [case[1:] for case in INVALID_SERVERS],
                         ids=[case[0] for case in INVALID_SERVERS])
async def test_each_invalid_server_field_is_reported_with_its_path(
    rt: Runtime, entry: dict[str, Any], field: str, fragment: str
) -> None:
    document = {"servers": [stdio("first"), copy.deepcopy(entry)]}
    problems = await problems_of(rt, document)
    path = f"servers[1].{field}"  # counted from 0, like event failures
    assert path in problems, problems
    assert fragment in problems[path]
    assert await McpServer.all().count() == 0  # the valid first server was not written


@pytest.mark.parametrize("schema_field", SCHEMA_FIELDS)
async def test_every_schema_list_is_checked_with_its_path(rt: Runtime, schema_field: str
                                                          ) -> None:
    bad = {schema_field: [{"name": "A"}, {"required": True}, {"name": "B", "secret": "yes"}]}
    problems = await problems_of(rt, {"servers": [stdio(**bad)]})
    assert problems[f"servers[0].{schema_field}[1]"] == "name must be a non-empty string"
    assert problems[f"servers[0].{schema_field}[2]"] == "secret must be true or false"
    not_a_list = await problems_of(rt, {"servers": [stdio(**{schema_field: {"name": "A"}})]})
    assert f"servers[0].{schema_field}" in not_a_list


async def test_duplicate_slugs_in_one_file_are_rejected(rt: Runtime) -> None:
    problems = await problems_of(rt, {"servers": [stdio("same"), stdio("other"), stdio("same")]})
    assert problems == {"servers[2].slug": "duplicate slug 'same' (also servers[0])"}
    assert await McpServer.all().count() == 0


@pytest.mark.parametrize(("document", "field"), [
    ({}, "servers"),
    ({"servers": {"slug": "x"}}, "servers"),
    ({"servers": [], "extra": 1}, "extra"),
    ({"servers": ["filesystem"]}, "servers[0]"),
    ([], "$"),
])
async def test_a_malformed_document_is_rejected(rt: Runtime, document: Any, field: str) -> None:
    assert field in await problems_of(rt, document)


async def test_every_problem_is_listed_and_nothing_is_written(rt: Runtime) -> None:
    await import_catalog(rt, example(), actor=CLI_ACTOR)
    document = example()
    document["servers"][0]["command"] = "changed"  # valid change, must not be applied
    document["servers"][1]["url"] = "not a url"
    document["servers"].append({"slug": "x", "transport_type": "sse", "timeout_ms": 0})

    with pytest.raises(ValidationError) as raised:
        await import_catalog(rt, document, actor=CLI_ACTOR)
    fields = [item["field"] for item in raised.value.details or []]
    assert fields == ["servers[1].url", "servers[2].slug", "servers[2].name", "servers[2].url",
                      "servers[2].timeout_ms"]
    assert "5 problems" in raised.value.message
    assert "servers[1].url" in raised.value.message
    assert (await get_server_by_slug("filesystem")).command == "npx"
    assert await McpServer.all().count() == 2
    assert await AuditEntry.filter(action="catalog.imported").count() == 1
