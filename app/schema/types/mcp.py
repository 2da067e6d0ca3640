"""The MCP catalogue, team installations and tool usage as people see them (docs/graphql.md §3).

Catalogue templates are shown whole (their env and headers are defaults, not
secrets). Installations never show a stored secret: `configPreview` is the
masked merge, revisions show who changed what when but not their snapshots.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, cast

import strawberry
from strawberry.scalars import JSON

from app.models import McpInstallation, McpInstallationRevision, McpServerLog, McpTool
from app.models import McpServer as McpServerRow
from app.models.enums import TransportType
from app.schema.context import Info, principal_of
from app.schema.pagination import checked_first
from app.schema.types.refs import UserRef
from app.services.mcp.config_merge import SCHEMA_FIELDS
from app.services.people import reads
from app.services.telemetry import usage as usage_service

strawberry.enum(TransportType)  # STDIO, HTTP, SSE (values: the catalog file's forms)


@strawberry.type
class SchemaField:
    """One field a tier may set (catalog file `*_schema` lists)."""

    name: str
    required: bool
    secret: bool
    description: str | None

    @classmethod
    def list_of(cls, value: Any) -> list[SchemaField] | None:
        if not isinstance(value, list):
            return None
        return [cls(name=str(item.get("name")), required=bool(item.get("required", False)),
                    secret=bool(item.get("secret", False)), description=item.get("description"))
                for item in value if isinstance(item, dict)]


@strawberry.input
class SchemaFieldInput:
    name: str
    required: bool = False
    secret: bool = False
    description: str | None = None

    def to_catalog(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": self.name, "required": self.required,
                                 "secret": self.secret}
        if self.description is not None:
            entry["description"] = self.description
        return entry


@strawberry.type
class McpServer:
    id: strawberry.ID
    slug: str
    name: str
    description: str | None
    transport_type: TransportType
    command: str | None
    args: list[str]
    env: JSON
    url: str | None
    headers: JSON
    url_query_params: JSON
    timeout_ms: int | None
    team_args_schema: list[SchemaField] | None
    team_env_schema: list[SchemaField] | None
    team_headers_schema: list[SchemaField] | None
    team_url_query_params_schema: list[SchemaField] | None
    user_args_schema: list[SchemaField] | None
    user_env_schema: list[SchemaField] | None
    user_headers_schema: list[SchemaField] | None
    user_url_query_params_schema: list[SchemaField] | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: McpServerRow) -> McpServer:
        schemas = {name: SchemaField.list_of(getattr(row, name)) for name in SCHEMA_FIELDS}
        return cls(
            id=strawberry.ID(row.id), slug=row.slug, name=row.name, description=row.description,
            transport_type=row.transport_type, command=row.command, args=list(row.args or []),
            env=row.env, url=row.url, headers=row.headers,
            url_query_params=row.url_query_params, timeout_ms=row.timeout_ms,
            created_at=row.created_at, updated_at=row.updated_at, **schemas,
        )


@strawberry.input
class McpServerInput:
    """One server of the catalog file format (docs/catalog.md); omitted fields are reset."""

    slug: str
    name: str
    transport_type: TransportType
    description: str | None = None
    command: str | None = None
    args: list[str] | None = None
    env: JSON | None = None
    url: str | None = None
    headers: JSON | None = None
    url_query_params: JSON | None = None
    timeout_ms: int | None = None
    team_args_schema: list[SchemaFieldInput] | None = None
    team_env_schema: list[SchemaFieldInput] | None = None
    team_headers_schema: list[SchemaFieldInput] | None = None
    team_url_query_params_schema: list[SchemaFieldInput] | None = None
    user_args_schema: list[SchemaFieldInput] | None = None
    user_env_schema: list[SchemaFieldInput] | None = None
    user_headers_schema: list[SchemaFieldInput] | None = None
    user_url_query_params_schema: list[SchemaFieldInput] | None = None

    def to_catalog(self) -> dict[str, Any]:
        """The catalog file's form of this server (unset fields left out)."""
        server: dict[str, Any] = {
            "slug": self.slug, "name": self.name, "transport_type": self.transport_type.value,
            "description": self.description, "command": self.command, "args": self.args,
            "env": self.env, "url": self.url, "headers": self.headers,
            "url_query_params": self.url_query_params, "timeout_ms": self.timeout_ms,
        }
        for name in SCHEMA_FIELDS:
            fields: list[SchemaFieldInput] | None = getattr(self, name)
            server[name] = None if fields is None else [item.to_catalog() for item in fields]
        return {key: value for key, value in server.items() if value is not None}


@strawberry.type
class InstallationRevision:
    revision: int
    created_at: datetime
    row: strawberry.Private[McpInstallationRevision]

    @strawberry.field
    async def actor(self, info: Info) -> UserRef | None:
        actor_id: str | None = self.row.actor_id  # type: ignore[attr-defined]
        user = None if actor_id is None else await info.context.loaders.user.load(actor_id)
        return None if user is None else UserRef.of(user)


@strawberry.type
class Tool:
    id: strawberry.ID
    tool_name: str
    description: str | None
    input_schema: JSON | None
    token_count: int | None
    discovered_at: datetime

    @classmethod
    def of(cls, row: McpTool) -> Tool:
        return cls(id=strawberry.ID(row.id), tool_name=row.tool_name,
                   description=row.description, input_schema=row.input_schema,
                   token_count=row.token_count, discovered_at=row.discovered_at)


@strawberry.type
class ServerLog:
    id: strawberry.ID
    level: str
    message: str
    logged_at: datetime
    satellite_id: strawberry.ID | None

    @classmethod
    def of(cls, row: McpServerLog) -> ServerLog:
        return cls(id=strawberry.ID(str(row.id)), level=row.level, message=row.message,
                   logged_at=row.logged_at,
                   satellite_id=None if row.satellite_id is None else strawberry.ID(
                       row.satellite_id))


@strawberry.type
class Installation:
    row: strawberry.Private[McpInstallation]
    id: strawberry.ID
    name: str
    team_id: strawberry.ID
    status: str
    status_message: str | None
    enabled: bool
    pinned_satellite_id: strawberry.ID | None
    settings: JSON
    revision: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: McpInstallation) -> Installation:
        pinned: str | None = row.pinned_satellite_id  # type: ignore[attr-defined]
        return cls(
            row=row, id=strawberry.ID(row.id), name=row.name,
            team_id=strawberry.ID(row.team_id),  # type: ignore[attr-defined]
            status=row.status, status_message=row.status_message, enabled=row.enabled,
            pinned_satellite_id=None if pinned is None else strawberry.ID(pinned),
            settings=row.settings, revision=row.revision, created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @strawberry.field
    async def owner(self, info: Info) -> UserRef | None:
        owner_id: str | None = self.row.owner_id  # type: ignore[attr-defined]
        user = None if owner_id is None else await info.context.loaders.user.load(owner_id)
        return None if user is None else UserRef.of(user)

    @strawberry.field
    async def server(self, info: Info) -> McpServer:
        server = await info.context.loaders.server.load(
            self.row.server_id)  # type: ignore[attr-defined]
        assert server is not None  # installations keep their server (ON DELETE RESTRICT)
        return McpServer.of(server)

    # The entry a satellite would receive (docs/protocol.md §9), secrets shown as "********".
    @strawberry.field
    async def config_preview(self, info: Info) -> JSON | None:
        entry = (await info.context.loaders.mcp.preview.load(self.row.id)).entry
        return cast("JSON | None", entry)

    # Required fields still unset (they keep the installation awaiting_config).
    @strawberry.field
    async def missing_fields(self, info: Info) -> list[str]:
        return (await info.context.loaders.mcp.preview.load(self.row.id)).missing

    @strawberry.field
    async def revisions(self, info: Info) -> list[InstallationRevision]:
        rows = await info.context.loaders.mcp.revisions.load(self.row.id)
        return [InstallationRevision(revision=row.revision, created_at=row.created_at, row=row)
                for row in rows]

    @strawberry.field
    async def tools(self, info: Info) -> list[Tool]:
        return [Tool.of(row) for row in await info.context.loaders.mcp.tools.load(self.row.id)]

    # Server log lines, newest first.
    @strawberry.field
    async def logs(self, info: Info, first: int | None = 50) -> list[ServerLog]:
        rows = await reads.server_logs(principal_of(info), self.row.id).limit(
            checked_first(first))
        return [ServerLog.of(row) for row in rows]


@strawberry.type
class ToolUsage:
    tool_name: str
    server_slug: str | None
    calls: int
    errors: int
    avg_duration_ms: float | None


@strawberry.type
class DayUsage:
    date: date
    calls: int
    errors: int
    sessions: int = strawberry.field(description="Client sessions that began this day.")
    distinct_clients: int = strawberry.field(
        description="Distinct clients (client type, user agent and address) among them.")


@strawberry.type
class UserUsage:
    user: UserRef
    calls: int


@strawberry.type
class UsageSummary:
    start: datetime = strawberry.field(name="from")
    end: datetime = strawberry.field(name="to")
    total_calls: int
    error_count: int
    avg_duration_ms: float | None
    p95_duration_ms: float | None
    by_tool: list[ToolUsage]
    by_day: list[DayUsage]
    by_user: list[UserUsage]
    total_sessions: int = strawberry.field(description="Client sessions that began in the "
                                                       "period.")
    distinct_clients: int = strawberry.field(
        description="Distinct clients (client type, user agent and address) among them, "
                    "each counted once over the period.")

    @classmethod
    def of(cls, summary: usage_service.UsageSummary) -> UsageSummary:
        return cls(
            start=summary.start, end=summary.end, total_calls=summary.total_calls,
            error_count=summary.error_count, avg_duration_ms=summary.avg_duration_ms,
            p95_duration_ms=summary.p95_duration_ms,
            by_tool=[ToolUsage(tool_name=item.tool_name, server_slug=item.server_slug,
                               calls=item.calls, errors=item.errors,
                               avg_duration_ms=item.avg_duration_ms)
                     for item in summary.by_tool],
            by_day=[DayUsage(date=item.date, calls=item.calls, errors=item.errors,
                             sessions=item.sessions, distinct_clients=item.distinct_clients)
                    for item in summary.by_day],
            by_user=[UserUsage(user=UserRef.of(item.user), calls=item.calls)
                     for item in summary.by_user],
            total_sessions=summary.total_sessions, distinct_clients=summary.distinct_clients,
        )


__all__ = [
    "DayUsage",
    "Installation",
    "InstallationRevision",
    "McpServer",
    "McpServerInput",
    "SchemaField",
    "SchemaFieldInput",
    "ServerLog",
    "Tool",
    "ToolUsage",
    "UsageSummary",
    "UserUsage",
]
