"""The read commands (docs/operations.md §3): one service call each, as `CLI_PRINCIPAL`
(a global administrator's view), printed as a table or JSON (`views.py`)."""

from __future__ import annotations

from datetime import timedelta

from app.cli.commands import Invocation
from app.cli.output import render_csv, render_rows
from app.cli.views import (
    COMMAND_COLUMNS,
    INSTALLATION_COLUMNS,
    MEMBER_COLUMNS,
    MEMBERSHIP_COLUMNS,
    PROCESS_COLUMNS,
    SERVER_COLUMNS,
    TEAM_COLUMNS,
    USER_COLUMNS,
    command_row,
    config_state_row,
    installation_row,
    member_row,
    membership_row,
    process_row,
    render_record,
    satellite_details,
    server_row,
    team_row,
    user_row,
)
from app.models import SatelliteMetricRollup
from app.services.common.clock import utcnow
from app.services.mcp.catalog import get_server_by_slug, list_servers
from app.services.people import lookups, reads
from app.services.people.principals import CLI_PRINCIPAL
from app.services.telemetry.reads import satellite_report

DEFAULT_COMMAND_LIMIT = 50
METRICS_COLUMNS = ("start", "samples", "cpu_min", "cpu_avg", "cpu_max", "memory_min_mb",
                   "memory_avg_mb", "memory_max_mb", "disk_min", "disk_avg", "disk_max",
                   "process_min", "process_max", "error_max")


async def team_list(call: Invocation) -> str:
    teams = await reads.teams(CLI_PRINCIPAL)
    return render_rows([team_row(team) for team in teams], TEAM_COLUMNS, as_json=call.args.json)


async def team_show(call: Invocation) -> str:
    view = await lookups.team_view(CLI_PRINCIPAL, call.args.team)
    record = {**team_row(view.team), "members": [member_row(row) for row in view.members]}
    return render_record(record, {"members": MEMBER_COLUMNS}, as_json=call.args.json)


async def user_list(call: Invocation) -> str:
    users = await reads.users(CLI_PRINCIPAL)
    return render_rows([user_row(user) for user in users], USER_COLUMNS, as_json=call.args.json)


async def user_show(call: Invocation) -> str:
    view = await lookups.user_view(CLI_PRINCIPAL, call.args.user)
    record = {**user_row(view.user),
              "teams": [membership_row(row) for row in view.memberships]}
    return render_record(record, {"teams": MEMBERSHIP_COLUMNS}, as_json=call.args.json)


async def catalog_list(call: Invocation) -> str:
    servers = await list_servers()
    return render_rows([server_row(server) for server in servers], SERVER_COLUMNS,
                       as_json=call.args.json)


async def catalog_show(call: Invocation) -> str:
    server = await get_server_by_slug(call.args.slug)
    return render_record(server_row(server, full=True), {}, as_json=call.args.json)


async def install_list(call: Invocation) -> str:
    rows = await lookups.installations(CLI_PRINCIPAL, team_slug=call.args.team)
    return render_rows([installation_row(row) for row in rows], INSTALLATION_COLUMNS,
                       as_json=call.args.json)


async def install_show(call: Invocation) -> str:
    view = await lookups.installation_view(CLI_PRINCIPAL, call.args.id)
    installation = view.installation
    record = {**installation_row(installation),
              "status_message": installation.status_message,
              "settings": installation.settings,
              "missing_fields": view.preview.missing,
              # secrets shown as "********", as GraphQL's configPreview shows them
              "config_preview": view.preview.entry}
    return render_record(record, {}, as_json=call.args.json)


async def command_list(call: Invocation) -> str:
    args = call.args
    commands = await reads.commands(CLI_PRINCIPAL, satellite_id=args.satellite,
                                    status=args.status).limit(args.limit)
    return render_rows([command_row(command) for command in commands], COMMAND_COLUMNS,
                       as_json=args.json)


async def command_show(call: Invocation) -> str:
    command = await lookups.require_command(CLI_PRINCIPAL, call.args.id)
    return render_record(command_row(command, full=True), {}, as_json=call.args.json)


async def satellite_show(call: Invocation) -> str:
    report = await satellite_report(CLI_PRINCIPAL, call.args.id)
    record = {**satellite_details(report.satellite),
              "config_state": config_state_row(report.config_state),
              "processes": [process_row(row) for row in report.processes]}
    return render_record(record, {"processes": PROCESS_COLUMNS}, as_json=call.args.json)


def _metrics_row(row: SatelliteMetricRollup) -> dict[str, object]:
    def average(total: float | None, count: int) -> float | None:
        return None if total is None or not count else round(total / count, 3)

    return {"start": row.bucket.isoformat().replace("+00:00", "Z"), "samples": row.samples,
            "cpu_min": row.cpu_min, "cpu_avg": average(row.cpu_sum, row.samples),
            "cpu_max": row.cpu_max, "memory_min_mb": row.memory_min,
            "memory_avg_mb": average(row.memory_sum, row.samples),
            "memory_max_mb": row.memory_max, "disk_min": row.disk_min,
            "disk_avg": average(row.disk_sum, row.disk_samples), "disk_max": row.disk_max,
            "process_min": row.process_min, "process_max": row.process_max,
            "error_max": row.error_max}


async def metrics_export(call: Invocation) -> str:
    args = call.args
    end = args.to or utcnow()
    start = args.from_ or end - timedelta(days=1)
    rows = await reads.metrics_history(CLI_PRINCIPAL, args.satellite, start, end,
                                       args.resolution)
    records = [_metrics_row(row) for row in rows]
    if args.csv:
        return render_csv(records, METRICS_COLUMNS)
    return render_rows(records, METRICS_COLUMNS, as_json=args.json)
