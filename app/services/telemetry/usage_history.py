"""A team's usage per minute or hour, for charts and capacity planning
(`Team.usageHistory`, docs/operations.md §12): tool calls, failed calls, client
sessions begun and distinct clients per bucket, counted in the database with one
grouped query for calls and one for sessions, whatever the number of rows.

Buckets are UTC and dense (a bucket without activity answers zeros), at most
`reads.MAX_HISTORY_BUCKETS` of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pypika_tortoise.context import SqlContext
from pypika_tortoise.enums import Dialects
from pypika_tortoise.terms import Function as SqlFunction
from tortoise.expressions import Function, Q
from tortoise.functions import Count

from app.services.people import reads
from app.services.people.principals import Principal
from app.services.telemetry import reads as reports
from app.services.telemetry.usage import ClientIdentity

_STEP = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1)}


class _TruncatedSql(SqlFunction):
    """A timestamp cut down to its minute or hour: `date_trunc` on PostgreSQL, a
    `strftime` string on SQLite."""

    unit = "minute"
    sqlite_format = "%Y-%m-%d %H:%M:00"

    def __init__(self, *args: Any) -> None:
        super().__init__("", *args)

    def get_function_sql(self, ctx: SqlContext) -> str:
        argument = self.get_arg_sql(self.args[0], ctx)
        if ctx.dialect == Dialects.POSTGRESQL:
            return f"date_trunc('{self.unit}', {argument})"
        return f"strftime('{self.sqlite_format}', {argument})"


class _HourSql(_TruncatedSql):
    unit = "hour"
    sqlite_format = "%Y-%m-%d %H:00:00"


class _Minute(Function):
    database_func = _TruncatedSql


class _Hour(Function):
    database_func = _HourSql


_BUCKET = {"minute": _Minute, "hour": _Hour}


@dataclass(frozen=True, slots=True)
class UsageBucket:
    start: datetime
    calls: int = 0
    errors: int = 0
    sessions: int = 0
    distinct_clients: int = 0


def _when(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


async def team_usage_history(principal: Principal, team_id: str, start: datetime,
                             end: datetime, resolution: str) -> list[UsageBucket]:
    """Usage of a team the caller belongs to (NOT_FOUND otherwise) in [start, end)."""
    reads.checked_history_range(start, end, resolution)
    await reads.require_team(principal, team_id)
    bucket = _BUCKET[resolution]
    logs = reads.usage_logs(principal, team_id=team_id).order_by().filter(
        occurred_at__gte=start, occurred_at__lt=end)
    calls = await logs.annotate(
        bucket=bucket("occurred_at"), calls=Count("id"),
        errors=Count("id", _filter=Q(success=False)),
    ).group_by("bucket").values("bucket", "calls", "errors")
    sessions_query = reports.client_sessions(principal, team_id=team_id).order_by().annotate(
        started=reports.session_start()).filter(started__gte=start, started__lt=end)
    clients = Count(ClientIdentity(), distinct=True)  # type: ignore[arg-type]
    sessions = await sessions_query.annotate(
        bucket=bucket(reports.session_start()), sessions=Count("id"), clients=clients,
    ).group_by("bucket").values("bucket", "sessions", "clients")

    found: dict[datetime, dict[str, int]] = {}
    for row in calls:
        found.setdefault(_when(row["bucket"]), {}).update(
            calls=int(row["calls"]), errors=int(row["errors"] or 0))
    for row in sessions:
        found.setdefault(_when(row["bucket"]), {}).update(
            sessions=int(row["sessions"]), distinct_clients=int(row["clients"]))
    step = _STEP[resolution]
    first = start.astimezone(UTC).replace(second=0, microsecond=0)
    if resolution == "hour":
        first = first.replace(minute=0)
    history = []
    moment = first
    while moment < end:
        history.append(UsageBucket(moment, **found.get(moment, {})))
        moment += step
    return history


__all__ = ["UsageBucket", "team_usage_history"]
