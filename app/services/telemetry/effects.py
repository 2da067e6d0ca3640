"""What newly stored events change (docs/protocol.md §10, "Event types"): usage
log, server logs (bounded per installation), request logs, installation status
(one UPDATE per installation per transaction: the last status wins, as applying
them in order would leave it), client activity counters, process rows, client
sessions and applied-config state (`states`: merged per key, in order), tool
catalogues (`catalogue`, in order), security audit entries and resource-limit
breaches. Unknown types change nothing. Replayed events change nothing.

The effects are collected while the events are read (`_Effects`), then written
with one statement per kind where the kind allows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from app.models import (
    AuditEntry,
    McpClientActivity,
    McpInstallation,
    McpRequestLog,
    McpServerLog,
    ResourceLimitBreach,
    SatelliteUsageLog,
)
from app.models.enums import ActorType
from app.services.common.storage import insert_rows, marks
from app.services.telemetry.catalogue import apply_catalogue
from app.services.telemetry.model import Event
from app.services.telemetry.rows import SERVER_LOG_COLUMNS, USAGE_COLUMNS, Batch
from app.services.telemetry.states import PROCESS_TYPES, ConfigStates, Processes, Sessions
from app.services.telemetry.values import count, number, text, when

MAX_SERVER_LOGS_PER_INSTALLATION = 1000
CLIENT_AUTH_FAILED = "satellite.client_auth_failed"


class _Effects:
    """The effects of one transaction's new events, collected in event order."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.usage: list[tuple[Any, ...]] = []  # rows in USAGE_COLUMNS order
        self.server_logs: list[tuple[Any, ...]] = []  # rows in SERVER_LOG_COLUMNS order
        self.requests: list[McpRequestLog] = []
        self.activity: dict[tuple[str, str], McpClientActivity] = {}
        self.statuses: dict[str, tuple[str, str | None]] = {}  # the last status wins
        self.catalogue: list[Event] = []
        self.audit: list[AuditEntry] = []
        self.breaches: list[ResourceLimitBreach] = []
        self.processes = Processes()
        self.sessions = Sessions()
        self.configs = ConfigStates()

    def status(self, satellite_id: str, event: Event) -> None:
        if event.installation is not None:
            message = event.data.get("status_message")
            self.statuses[event.installation.id] = (
                str(event.data["status"])[:32], message if isinstance(message, str) else None)

    def process(self, satellite_id: str, event: Event) -> None:
        self.processes.add(satellite_id, event)
        if event.type == "mcp.server.permanently_failed" and event.installation is not None:
            self.statuses[event.installation.id] = (
                "permanently_failed", text(event.data.get("last_error"), None))

    def tools(self, satellite_id: str, event: Event) -> None:
        self.catalogue.append(event)

    def request_logs(self, satellite_id: str, event: Event) -> None:
        if event.installation is None:
            return
        self.requests.extend(
            McpRequestLog(
                installation_id=event.installation.id, team_id=event.team_id,
                satellite_id=satellite_id, tool_name=text(item.get("tool_name"), 255) or "",
                tool_params=item.get("tool_params"),
                response_time_ms=number(item.get("response_time_ms")),
                success=item.get("success") is not False,
                logged_at=when(item.get("timestamp"), event.occurred_at),
            )
            for item in event.data["requests"] if isinstance(item, dict)
        )

    def client_activity(self, satellite_id: str, event: Event) -> None:
        data = event.data
        if event.team_id is not None:
            self.activity[(satellite_id, event.team_id)] = McpClientActivity(
                satellite_id=satellite_id, team_id=event.team_id,
                request_count=count(data.get("request_count")),
                tool_call_count=count(data.get("tool_call_count")),
                last_activity_at=when(data.get("last_activity_at"), event.occurred_at),
                updated_at=self.now,
            )
        self.sessions.activity(satellite_id, event)

    def connected(self, satellite_id: str, event: Event) -> None:
        self.sessions.connected(satellite_id, event)

    def disconnected(self, satellite_id: str, event: Event) -> None:
        self.sessions.disconnected(satellite_id, event)

    def config_refreshed(self, satellite_id: str, event: Event) -> None:
        self.configs.refreshed(satellite_id, event)

    def config_error(self, satellite_id: str, event: Event) -> None:
        self.configs.error(satellite_id, event)

    def auth_failed(self, satellite_id: str, event: Event) -> None:
        data = event.data
        self.audit.append(AuditEntry(
            at=self.now, actor_type=ActorType.SATELLITE, actor_satellite_id=satellite_id,
            address=text(data.get("ip_address"), 64), action=CLIENT_AUTH_FAILED,
            object_type="satellite", object_id=satellite_id, team_id=event.team_id,
            details={"reason": data.get("reason"), "client_id": data.get("client_id"),
                     "ip_address": data.get("ip_address"), "event_id": str(event.id)},
        ))

    def limit_exceeded(self, satellite_id: str, event: Event) -> None:
        data = event.data
        self.breaches.append(ResourceLimitBreach(
            satellite_id=satellite_id, team_id=event.team_id,
            resource_type=str(data["resource_type"])[:32],
            current_value=number(data.get("current_value")),
            limit_value=number(data.get("limit_value")), occurred_at=event.occurred_at,
        ))

    async def write(self, conn: BaseDBAsyncClient) -> None:
        for installation_id, (status, message) in self.statuses.items():
            await _set_installation_status(conn, installation_id, status, message)
        if self.usage:
            await insert_rows(conn, SatelliteUsageLog, USAGE_COLUMNS, self.usage)
        if self.requests:
            await McpRequestLog.bulk_create(self.requests, batch_size=500, using_db=conn)
        if self.server_logs:
            await insert_rows(conn, McpServerLog, SERVER_LOG_COLUMNS, self.server_logs)
            for installation_id in dict.fromkeys(str(row[0]) for row in self.server_logs):
                await _trim_server_logs(conn, installation_id)
        if self.activity:
            await McpClientActivity.bulk_create(
                list(self.activity.values()), using_db=conn,
                on_conflict=["satellite_id", "team_id"],
                update_fields=["request_count", "tool_call_count", "last_activity_at",
                               "updated_at"],
            )
        for event in self.catalogue:
            await apply_catalogue(conn, event)
        await self.processes.write(conn, self.now)
        await self.sessions.write(conn, self.now)
        await self.configs.write(conn, self.now)
        if self.audit:
            await AuditEntry.bulk_create(self.audit, batch_size=500, using_db=conn)
        if self.breaches:
            await ResourceLimitBreach.bulk_create(self.breaches, batch_size=500, using_db=conn)


_Handler = Callable[[_Effects, str, Event], None]
_HANDLERS: dict[str, _Handler] = {
    **dict.fromkeys(PROCESS_TYPES, _Effects.process),
    "mcp.server.status_changed": _Effects.status,
    "mcp.tools.discovered": _Effects.tools,
    "mcp.tools.updated": _Effects.tools,
    "mcp.request.logs": _Effects.request_logs,
    "mcp.client.activity": _Effects.client_activity,
    "mcp.client.connected": _Effects.connected,
    "mcp.client.disconnected": _Effects.disconnected,
    "config.refreshed": _Effects.config_refreshed,
    "config.error": _Effects.config_error,
    "security.auth.failed": _Effects.auth_failed,
    "resource.limit.exceeded": _Effects.limit_exceeded,
}


async def apply_effects(conn: BaseDBAsyncClient, batches: Sequence[Batch],
                        now: datetime) -> None:
    """Apply the effects of the newly stored events, bulk where the type allows."""
    effects = _Effects(now)
    for batch in batches:
        satellite_id = batch.state.id
        for event in batch.events:
            if not event.new:
                continue
            if event.usage_row is not None:  # the common case first
                effects.usage.append(event.usage_row)
            elif event.log_rows:
                effects.server_logs.extend(event.log_rows)
            else:
                handler = _HANDLERS.get(event.type)
                if handler is not None:  # unknown types (and logs of no known installation)
                    handler(effects, satellite_id, event)
    await effects.write(conn)


async def _set_installation_status(conn: BaseDBAsyncClient, installation_id: str, status: str,
                                   message: str | None) -> None:
    """Only `status` and `status_message`, as the ORM's queryset update would (no updated_at)."""
    mark = marks(conn, 3)
    table = McpInstallation._meta.db_table
    sql = (f'UPDATE "{table}" SET "status" = {mark[0]}, "status_message" = {mark[1]} '  # noqa: S608
           f'WHERE "id" = {mark[2]}')
    await conn.execute_query(sql, [status, message, installation_id])


async def _trim_server_logs(conn: BaseDBAsyncClient, installation_id: str) -> None:
    """Keep the newest `MAX_SERVER_LOGS_PER_INSTALLATION` lines of one installation.

    One statement: with no line beyond the bound the subquery is NULL and nothing goes.
    """
    mark = marks(conn, 2)
    table = McpServerLog._meta.db_table
    # The table name is our constant; the installation id is a bound parameter.
    sql = (
        f'DELETE FROM "{table}" WHERE "installation_id" = {mark[0]} AND "id" <= '  # noqa: S608
        f'(SELECT "id" FROM "{table}" WHERE "installation_id" = {mark[1]} '
        f'ORDER BY "id" DESC LIMIT 1 OFFSET {MAX_SERVER_LOGS_PER_INSTALLATION})'
    )
    await conn.execute_query(sql, [installation_id, installation_id])
