"""What newly stored events change (docs/protocol.md §10, "Event types as currently
implemented"): process rows, installation status (one UPDATE per installation per
transaction: the last status wins, as applying them in order would leave it),
usage log, tool catalogue (replaced), server logs (bounded per installation),
request logs, client activity counters. Replayed events change nothing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from app.models import (
    McpClientActivity,
    McpInstallation,
    McpRequestLog,
    McpServerLog,
    McpTool,
    SatelliteProcess,
    SatelliteUsageLog,
)
from app.models.enums import HealthStatus, ProcessStatus
from app.services.common.storage import insert_rows, marks
from app.services.fleet.state import SatelliteState
from app.services.telemetry.model import Event, Installation
from app.services.telemetry.rows import SERVER_LOG_COLUMNS, USAGE_COLUMNS, Batch
from app.services.telemetry.values import count, is_int, number, text, when

MAX_SERVER_LOGS_PER_INSTALLATION = 1000
_PROCESS_TYPES = frozenset({
    "mcp.server.started", "mcp.server.crashed", "mcp.server.restarted",
    "mcp.server.dormant", "mcp.server.respawned",
})


async def apply_effects(conn: BaseDBAsyncClient, batches: Sequence[Batch],
                        now: datetime) -> None:
    """Apply the effects of the newly stored events, bulk where the type allows."""
    usage: list[tuple[Any, ...]] = []  # rows in USAGE_COLUMNS order
    server_logs: list[tuple[Any, ...]] = []  # rows in SERVER_LOG_COLUMNS order
    requests: list[McpRequestLog] = []
    activity: dict[tuple[str, str], McpClientActivity] = {}
    statuses: dict[str, tuple[str, str | None]] = {}  # the last status wins
    for batch in batches:
        state = batch.state
        for event in batch.events:
            if not event.new:
                continue
            data = event.data
            installation_id = event.installation.id if event.installation else None
            if event.usage_row is not None:
                usage.append(event.usage_row)
            elif event.log_rows:
                server_logs.extend(event.log_rows)
            elif event.type in _PROCESS_TYPES:
                await _apply_process(conn, state, event, now)
            elif event.type == "mcp.server.status_changed":
                if installation_id is not None:
                    message = data.get("status_message")
                    statuses[installation_id] = (
                        data["status"], message if isinstance(message, str) else None
                    )
            elif event.type == "mcp.tools.discovered":
                if event.installation is not None:
                    await _replace_tools(conn, event.installation, data["tools"],
                                         event.occurred_at)
            elif event.type == "mcp.request.logs":
                if installation_id is not None:
                    requests.extend(
                        McpRequestLog(
                            installation_id=installation_id, team_id=event.team_id,
                            satellite_id=state.id,
                            tool_name=text(item.get("tool_name"), 255) or "",
                            tool_params=item.get("tool_params"),
                            response_time_ms=number(item.get("response_time_ms")),
                            success=item.get("success") is not False,
                            logged_at=when(item.get("timestamp"), event.occurred_at),
                        )
                        for item in data["requests"] if isinstance(item, dict)
                    )
            elif event.type == "mcp.client.activity" and event.team_id is not None:
                activity[(state.id, event.team_id)] = McpClientActivity(
                    satellite_id=state.id, team_id=event.team_id,
                    request_count=count(data.get("request_count")),
                    tool_call_count=count(data.get("tool_call_count")),
                    last_activity_at=when(data.get("last_activity_at"), event.occurred_at),
                    updated_at=now,
                )
    for installation_id, (status, message) in statuses.items():
        await _set_installation_status(conn, installation_id, status, message)
    if usage:
        await insert_rows(conn, SatelliteUsageLog, USAGE_COLUMNS, usage)
    if requests:
        await McpRequestLog.bulk_create(requests, batch_size=500, using_db=conn)
    if server_logs:
        await insert_rows(conn, McpServerLog, SERVER_LOG_COLUMNS, server_logs)
        for installation_id in dict.fromkeys(str(row[0]) for row in server_logs):
            await _trim_server_logs(conn, installation_id)
    if activity:
        await McpClientActivity.bulk_create(
            list(activity.values()), using_db=conn, on_conflict=["satellite_id", "team_id"],
            update_fields=["request_count", "tool_call_count", "last_activity_at", "updated_at"],
        )


async def _set_installation_status(conn: BaseDBAsyncClient, installation_id: str, status: str,
                                   message: str | None) -> None:
    """Only `status` and `status_message`, as the ORM's queryset update would (no updated_at)."""
    mark = marks(conn, 3)
    table = McpInstallation._meta.db_table
    sql = (f'UPDATE "{table}" SET "status" = {mark[0]}, "status_message" = {mark[1]} '  # noqa: S608
           f'WHERE "id" = {mark[2]}')
    await conn.execute_query(sql, [status, message, installation_id])


_PROCESS_STATES: dict[str, tuple[ProcessStatus, HealthStatus]] = {
    "mcp.server.started": (ProcessStatus.RUNNING, HealthStatus.HEALTHY),
    "mcp.server.crashed": (ProcessStatus.FAILED, HealthStatus.UNHEALTHY),
    "mcp.server.restarted": (ProcessStatus.RUNNING, HealthStatus.HEALTHY),
    "mcp.server.dormant": (ProcessStatus.STOPPED, HealthStatus.UNKNOWN),
    "mcp.server.respawned": (ProcessStatus.RUNNING, HealthStatus.HEALTHY),
}


async def _apply_process(conn: BaseDBAsyncClient, state: SatelliteState, event: Event,
                         now: datetime) -> None:
    """Update the process the event names; create its row when the satellite never reported it."""
    data = event.data
    server_id = data.get("server_id")
    if not isinstance(server_id, str) or not server_id:
        return
    status, health = _PROCESS_STATES[event.type]
    fields: dict[str, Any] = {"status": status, "health_status": health, "updated_at": now,
                              "last_reported_at": event.occurred_at}
    if event.type == "mcp.server.crashed":
        fields["error_message"] = (
            f"exited with code {data.get('exit_code')}, signal {data.get('signal')}"
            f" after {data.get('uptime_seconds')} s (crash {data.get('crash_count')})"
        )
        fields["os_pid"] = None
    elif event.type == "mcp.server.dormant":
        fields["os_pid"] = None
    else:
        pid = data.get("new_process_id" if event.type == "mcp.server.restarted" else "process_id")
        fields["os_pid"] = pid if isinstance(pid, int) and is_int(pid) and 0 <= pid < 2**31 \
            else None
        fields["started_at"] = event.occurred_at
        fields["error_message"] = None
    processes = SatelliteProcess.filter(satellite_id=state.id).using_db(conn)
    if event.process_id is not None:
        changed = await processes.filter(process_id=event.process_id).update(**fields)
    elif event.installation is not None:
        changed = await processes.filter(installation_id=event.installation.id).update(**fields)
    else:
        changed = 0
    if changed:
        return
    await SatelliteProcess.create(
        using_db=conn, satellite_id=state.id, process_id=server_id,
        server_name=text(data.get("server_slug"), 255),
        installation_id=event.installation.id if event.installation else None,
        team_id=event.team_id, **fields,
    )


async def _replace_tools(conn: BaseDBAsyncClient, installation: Installation,
                         tools: list[Any], at: datetime) -> None:
    await McpTool.filter(installation_id=installation.id).using_db(conn).delete()
    rows = [
        McpTool(
            installation_id=installation.id, team_id=installation.team_id,
            tool_name=item["tool_name"][:255],
            description=text(item.get("description"), None),
            input_schema=item.get("input_schema"),
            token_count=count(item.get("token_count")) if item.get("token_count") is not None
            else None,
            discovered_at=at,
        )
        for item in tools
        if isinstance(item, dict) and isinstance(item.get("tool_name"), str)
    ]
    if rows:
        await McpTool.bulk_create(rows, batch_size=500, using_db=conn)


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
