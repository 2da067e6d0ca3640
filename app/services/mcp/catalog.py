"""The MCP server catalogue: import of a catalog file, lookup (docs/catalog.md).

A catalog file is `{"servers": [server, ...]}`; each server mirrors the
`McpServer` template (`config_merge.TEMPLATE_FIELDS` plus slug, name and an
optional description). The whole file is validated before anything is
written; then each server is created or replaced by its slug.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tortoise.exceptions import IntegrityError

from app.errors import Conflict, NotFound, ValidationError
from app.models import McpServer
from app.models.enums import TransportType
from app.services.commands.config_push import push_for_servers
from app.services.common.actors import Actor
from app.services.common.audit import record_audit
from app.services.mcp.config_merge import SCHEMA_FIELDS, TEMPLATE_FIELDS, validate_schema

if TYPE_CHECKING:
    from app.services.fleet.context import FleetContext

SLUG_PATTERN = r"[a-z0-9][a-z0-9-]{1,62}"
_SLUG_RE = re.compile(SLUG_PATTERN)
MAX_NAME_LENGTH = 200
MAX_COMMAND_LENGTH = 1024
MAX_URL_LENGTH = 2048
MAX_TIMEOUT_MS = 2**31 - 1
_REMOTE = (TransportType.HTTP.value, TransportType.SSE.value)
_STRING_MAPS = ("env", "headers", "url_query_params")
_SERVER_FIELDS = frozenset({"slug", "name", "description", *TEMPLATE_FIELDS})
# At most this many problems are spelled out in the one-line error message (all are in details).
_MESSAGE_PROBLEMS = 5


@dataclass(frozen=True, slots=True)
class CatalogImport:
    created: int
    updated: int

    @property
    def imported(self) -> int:
        return self.created + self.updated


class _Problems:
    """Problems found in a catalog file, each with the JSON path it concerns."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, path: str, message: str) -> None:
        self.items.append({"field": path, "message": message})

    def add_labelled(self, errors: list[str]) -> None:
        """`validate_schema` answers `path: message` strings."""
        for error in errors:
            path, _, message = error.partition(": ")
            self.add(path, message)


def _url_problem(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    if len(value) > MAX_URL_LENGTH:
        return f"must have at most {MAX_URL_LENGTH} characters"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL with a host"
    return None


def _string_problem(value: Any, max_length: int) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return "must be a non-empty string"
    if len(value) > max_length:
        return f"must have at most {max_length} characters"
    return None


def _check_server(server: Any, where: str, problems: _Problems) -> None:
    if not isinstance(server, dict):
        problems.add(where, "must be an object")
        return
    for key in sorted(set(server) - _SERVER_FIELDS):
        problems.add(f"{where}.{key}", "is not a catalog field")
    slug = server.get("slug")
    if not isinstance(slug, str) or not _SLUG_RE.fullmatch(slug):
        problems.add(f"{where}.slug", "must be 2-63 characters of a-z, 0-9 and '-', "
                     "starting with a letter or digit")
    name_problem = _string_problem(server.get("name"), MAX_NAME_LENGTH)
    if name_problem:
        problems.add(f"{where}.name", name_problem)
    description = server.get("description")
    if description is not None and not isinstance(description, str):
        problems.add(f"{where}.description", "must be a string")
    transport = server.get("transport_type")
    if transport not in [member.value for member in TransportType]:
        problems.add(f"{where}.transport_type", "must be one of stdio, http, sse")
    if transport == TransportType.STDIO.value or server.get("command") is not None:
        command_problem = _string_problem(server.get("command"), MAX_COMMAND_LENGTH)
        if command_problem:
            problems.add(f"{where}.command", command_problem)
    if transport in _REMOTE or server.get("url") is not None:
        url_problem = _url_problem(server.get("url"))
        if url_problem:
            problems.add(f"{where}.url", url_problem)
    args = server.get("args")
    if args is not None and (
        not isinstance(args, list) or not all(isinstance(arg, str) for arg in args)
    ):
        problems.add(f"{where}.args", "must be a list of strings")
    for kind in _STRING_MAPS:
        mapping = server.get(kind)
        if mapping is None:
            continue
        if not isinstance(mapping, dict):
            problems.add(f"{where}.{kind}", "must be an object of string values")
            continue
        for key, value in mapping.items():
            if not key:
                problems.add(f"{where}.{kind}", "names must be non-empty")
            elif not isinstance(value, str):
                problems.add(f"{where}.{kind}.{key}", "must be a string")
    timeout = server.get("timeout_ms")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int)
        or not 1 <= timeout <= MAX_TIMEOUT_MS
    ):
        problems.add(f"{where}.timeout_ms", "must be a positive integer (milliseconds)")
    for schema_field in SCHEMA_FIELDS:
        problems.add_labelled(validate_schema(server.get(schema_field), f"{where}.{schema_field}"))


def validate_catalog(document: Any) -> list[dict[str, Any]]:
    """Every problem in a catalog file as `{"field": JSON path, "message"}` (empty = valid).

    Positions count from 0 (`servers[0]` is the first), as in `validate_schema` and as
    event batches report failures (docs/protocol.md §10).
    Slugs must be unique within the file.
    """
    problems = _Problems()
    if not isinstance(document, dict):
        problems.add("$", 'must be an object {"servers": [...]}')
        return problems.items
    for key in sorted(set(document) - {"servers"}):
        problems.add(key, "is not a catalog field")
    servers = document.get("servers")
    if not isinstance(servers, list):
        problems.add("servers", "must be a list of servers")
        return problems.items
    first_position: dict[str, int] = {}
    for position, server in enumerate(servers):
        where = f"servers[{position}]"
        _check_server(server, where, problems)
        slug = server.get("slug") if isinstance(server, dict) else None
        if isinstance(slug, str):
            if slug in first_position:
                problems.add(f"{where}.slug",
                             f"duplicate slug {slug!r} (also servers[{first_position[slug]}])")
            else:
                first_position[slug] = position
    return problems.items


def _template_values(server: dict[str, Any]) -> dict[str, Any]:
    """The row's columns for a valid server; absent fields reset to their empty values."""
    values: dict[str, Any] = {
        "name": server["name"].strip(),
        "description": server.get("description"),
        "transport_type": TransportType(server["transport_type"]),
        "command": server.get("command"),
        "args": list(server.get("args") or []),
        "url": server.get("url"),
        "timeout_ms": server.get("timeout_ms"),
    }
    for kind in _STRING_MAPS:
        values[kind] = dict(server.get(kind) or {})
    for schema_field in SCHEMA_FIELDS:
        values[schema_field] = server.get(schema_field)
    return values


async def _upsert(slug: str, values: dict[str, Any], now: datetime) -> tuple[str, bool, bool]:
    """Create or replace one server by slug with single statements.

    Returns (server id, created, changed): a server whose template is already
    exactly `values` is left alone, so re-importing a file changes nothing.
    """
    existing = await McpServer.get_or_none(slug=slug)
    if existing is not None:
        if all(_same(getattr(existing, name), value) for name, value in values.items()):
            return existing.id, False, False
        # `.update()` does not touch auto_now fields, so updated_at is set here.
        await McpServer.filter(id=existing.id).update(**values, updated_at=now)
        return existing.id, False, True
    try:
        created = await McpServer.create(slug=slug, **values)
    except IntegrityError:  # created concurrently: replace it instead
        await McpServer.filter(slug=slug).update(**values, updated_at=now)
        return (await get_server_by_slug(slug)).id, False, True
    return created.id, True, True


def _same(current: Any, wanted: Any) -> bool:
    return bool(getattr(current, "value", current) == getattr(wanted, "value", wanted))


def _failure(problems: list[dict[str, Any]]) -> ValidationError:
    shown = "; ".join(
        f"{item['field']}: {item['message']}" for item in problems[:_MESSAGE_PROBLEMS]
    )
    more = len(problems) - _MESSAGE_PROBLEMS
    suffix = f"; and {more} more" if more > 0 else ""
    count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
    return ValidationError(
        f"Invalid catalog file ({count}, nothing imported): {shown}{suffix}", details=problems
    )


async def import_catalog(rt: FleetContext, document: dict[str, Any], *, actor: Actor
                         ) -> CatalogImport:
    """Create or update the catalog's servers by slug.

    The whole document is validated first (`validate_catalog`); any problem raises
    ValidationError listing every problem with its JSON path, and nothing is written.
    Each server is then one short write (an UPDATE by slug, else an INSERT); fields a
    server omits are reset, so the file is the template. Audited as `catalog.imported`.
    Satellites serving an installation of a changed template get a `configure`;
    servers whose template is unchanged are not written at all.
    """
    problems = validate_catalog(document)
    if problems:
        raise _failure(problems)
    created = updated = 0
    changed: list[str] = []
    for server in document["servers"]:
        server_id, was_created, was_changed = await _upsert(
            server["slug"], _template_values(server), rt.clock.now()
        )
        created += was_created
        updated += not was_created
        if was_changed and not was_created:
            changed.append(server_id)
    await record_audit(
        "catalog.imported",
        actor=actor,
        object_type="mcp_server",
        details={
            "created": created,
            "updated": updated,
            "slugs": [server["slug"] for server in document["servers"]],
        },
    )
    await push_for_servers(rt, changed)
    return CatalogImport(created=created, updated=updated)


async def list_servers() -> list[McpServer]:
    """Every catalogue server, ordered by slug."""
    return await McpServer.all().order_by("slug")


async def get_server_by_slug(slug: str) -> McpServer:
    server = await McpServer.get_or_none(slug=slug)
    if server is None:
        raise NotFound(f"MCP server not found (slug '{slug}')", code="mcp_server_not_found")
    return server


# ---- one server at a time (GraphQL createMcpServer / updateMcpServer) ------------------


def _server_failure(problems: list[dict[str, Any]]) -> ValidationError:
    """The catalog file's problems, with paths relative to the one server given."""
    located = [{**item, "field": item["field"].replace("servers[0]", "input", 1)}
               for item in problems]
    shown = "; ".join(f"{item['field']}: {item['message']}" for item in located[:_MESSAGE_PROBLEMS])
    return ValidationError(f"Invalid MCP server: {shown}", details=located)


async def save_server(rt: FleetContext, server: dict[str, Any], *, server_id: str | None,
                      actor: Actor) -> McpServer:
    """Create a catalogue server (`server_id` None) or replace server `server_id` whole.

    `server` is one server of the catalog file format, checked by the same
    `validate_catalog`; fields it omits are reset. A slug taken by another server
    is a CONFLICT. When an existing template changes, the satellites serving its
    installations get a `configure` (as `import_catalog` does); an unchanged save
    writes nothing. Audited as `catalog.server_created` / `catalog.server_updated`.
    """
    problems = validate_catalog({"servers": [server]})
    if problems:
        raise _server_failure(problems)
    slug, values = server["slug"], _template_values(server)
    taken = await McpServer.filter(slug=slug).exclude(id=server_id or "").exists()
    if taken:
        raise Conflict(f"Another MCP server has the slug '{slug}'", code="mcp_server_slug_taken")
    if server_id is None:
        try:
            created = await McpServer.create(slug=slug, **values)
        except IntegrityError as error:  # the slug was taken meanwhile
            raise Conflict(f"Another MCP server has the slug '{slug}'",
                           code="mcp_server_slug_taken") from error
        await record_audit("catalog.server_created", actor=actor, object_type="mcp_server",
                           object_id=created.id, details={"slug": slug})
        return created
    existing = await get_server(server_id)
    wanted = {"slug": slug, **values}
    if all(_same(getattr(existing, name), value) for name, value in wanted.items()):
        return existing
    try:
        await McpServer.filter(id=existing.id).update(**wanted, updated_at=rt.clock.now())
    except IntegrityError as error:
        raise Conflict(f"Another MCP server has the slug '{slug}'",
                       code="mcp_server_slug_taken") from error
    await record_audit("catalog.server_updated", actor=actor, object_type="mcp_server",
                       object_id=existing.id, details={"slug": slug})
    await push_for_servers(rt, [existing.id])
    return await get_server(existing.id)


async def get_server(server_id: str) -> McpServer:
    server = await McpServer.get_or_none(id=server_id)
    if server is None:
        raise NotFound("MCP server not found", code="mcp_server_not_found")
    return server
