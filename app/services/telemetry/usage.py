"""A team's MCP usage: tool calls summarised from `satellite_usage_logs`, client
sessions from `mcp_client_sessions` (`usage` in docs/graphql.md §3, "MCP
catalogue, installations, usage").

Call rows come from `mcp.tool.executed` events (one row per call: tool, server
slug, duration, success); sessions from `mcp.client.connected`/`disconnected`.
The summary is computed in the database with a fixed number of aggregate
queries over one bounded period, so its cost does not depend on how many rows
it covers:

- the period defaults to the last 30 days (ending now); it may not exceed
  `MAX_PERIOD`, and `from` must not be after `to` (VALIDATION otherwise);
- `byTool` and `byUser` list at most `MAX_GROUPS` entries, most calls first;
  `byDay` is one entry per UTC day with calls or sessions, oldest first;
- `p95DurationMs` is the nearest-rank 95th percentile of the calls that
  reported a duration (one indexed ORDER BY … OFFSET query, exact on every
  database); averages likewise ignore calls without a duration;
- a session counts on the day it began (`session_start`); a client is one
  combination of client type, user agent and address, counted once per day in
  `byDay` and once over the period in the totals.

Visibility is the scope chokepoint's (usage rows are team-owned): a team the
caller is not a member of answers NOT_FOUND, before the period is checked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pypika_tortoise.context import SqlContext
from pypika_tortoise.functions import Date
from pypika_tortoise.terms import Function as SqlFunction
from tortoise.expressions import F, Function, Q
from tortoise.functions import Avg, Count
from tortoise.queryset import QuerySet

from app.errors import ValidationError
from app.models import McpClientSession, SatelliteUsageLog, User
from app.services.common.clock import utcnow
from app.services.people import reads
from app.services.people.principals import Principal
from app.services.telemetry import reads as reports

DEFAULT_PERIOD = timedelta(days=30)
MAX_PERIOD = timedelta(days=366)
MAX_GROUPS = 200
PERCENTILE = 0.95


class _Day(Function):
    """The calendar day of a timestamp (`DATE(x)`: SQLite and PostgreSQL alike)."""

    database_func = Date


class _Joined(SqlFunction):
    """Its arguments as one string (`COALESCE(a, '') || '|' || …`, SQLite and PostgreSQL
    alike; SQLite before 3.44 has no CONCAT), so that COUNT(DISTINCT …) counts distinct
    combinations."""

    def __init__(self, *args: Any) -> None:
        super().__init__("", *args)

    def get_function_sql(self, ctx: SqlContext) -> str:
        parts = (f"COALESCE({self.get_arg_sql(arg, ctx)}, '')" for arg in self.args)
        return "(" + " || '|' || ".join(parts) + ")"


class ClientIdentity(Function):
    """Who connected: the client type, user agent and address of a session."""

    database_func = _Joined

    def __init__(self) -> None:
        super().__init__("client_type", F("user_agent"), F("ip_address"))


@dataclass(frozen=True, slots=True)
class ToolUsage:
    tool_name: str
    server_slug: str | None
    calls: int
    errors: int
    avg_duration_ms: float | None


@dataclass(frozen=True, slots=True)
class DayUsage:
    date: date
    calls: int
    errors: int
    sessions: int = 0
    distinct_clients: int = 0


@dataclass(frozen=True, slots=True)
class UserUsage:
    user: User
    calls: int


@dataclass(frozen=True, slots=True)
class UsageSummary:
    start: datetime
    end: datetime
    total_calls: int
    error_count: int
    avg_duration_ms: float | None
    p95_duration_ms: float | None
    by_tool: list[ToolUsage]
    by_day: list[DayUsage]
    by_user: list[UserUsage]
    total_sessions: int = 0
    distinct_clients: int = 0


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def usage_period(start: datetime | None, end: datetime | None,
                 now: datetime | None = None) -> tuple[datetime, datetime]:
    """The period to summarise: `[start, end]`, by default the 30 days before now."""
    end = _aware(end) if end is not None else (now or utcnow())
    start = _aware(start) if start is not None else end - DEFAULT_PERIOD
    if start > end:
        raise ValidationError("from must not be after to",
                              details=[{"field": "from", "message": "after to"}])
    if end - start > MAX_PERIOD:
        raise ValidationError(f"The period may span at most {MAX_PERIOD.days} days",
                              details=[{"field": "from", "message": "period too long"}])
    return start, end


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _day(value: Any) -> date:
    """`DATE(x)` answers a date (PostgreSQL) or an ISO date string (SQLite)."""
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


async def _percentile(logs: QuerySet[SatelliteUsageLog], timed: int) -> float | None:
    if timed == 0:
        return None
    rank = math.ceil(PERCENTILE * timed) - 1  # nearest rank, counted from 0
    values = await logs.filter(duration_ms__isnull=False).order_by("duration_ms").offset(
        rank).limit(1).values_list("duration_ms", flat=True)
    return _float(values[0]) if values else None


async def _session_figures(sessions: QuerySet[McpClientSession], start: datetime,
                           end: datetime) -> tuple[dict[str, Any], dict[date, tuple[int, int]]]:
    """Sessions and distinct clients over the period, and per day: {day: (sessions, clients)}."""
    sessions = sessions.order_by().annotate(started=reports.session_start()).filter(
        started__gte=start, started__lte=end)
    # Aggregates take a function at run time (Function.resolve); the stubs say fields only.
    clients = Count(ClientIdentity(), distinct=True)  # type: ignore[arg-type]
    [totals] = await sessions.annotate(sessions=Count("id"), clients=clients).values(
        "sessions", "clients")
    days = await sessions.annotate(day=_Day(reports.session_start()), sessions=Count("id"),
                                   clients=clients).group_by("day").values(
        "day", "sessions", "clients")
    return totals, {_day(row["day"]): (int(row["sessions"]), int(row["clients"]))
                    for row in days}


async def summarize_usage(logs: QuerySet[SatelliteUsageLog],
                          sessions: QuerySet[McpClientSession], start: datetime, end: datetime
                          ) -> UsageSummary:
    """The summary of the (already scoped) usage rows `logs` and client `sessions` within
    `[start, end]`."""
    logs = logs.filter(occurred_at__gte=start, occurred_at__lte=end)
    errors = Count("id", _filter=Q(success=False))
    [totals] = await logs.annotate(
        calls=Count("id"), errors=errors, avg=Avg("duration_ms"), timed=Count("duration_ms"),
    ).values("calls", "errors", "avg", "timed")
    tools = await logs.annotate(
        calls=Count("id"), errors=errors, avg=Avg("duration_ms"),
    ).group_by("tool_name", "server_slug").order_by("-calls", "tool_name", "server_slug").limit(
        MAX_GROUPS).values("tool_name", "server_slug", "calls", "errors", "avg")
    days = await logs.annotate(day=_Day("occurred_at"), calls=Count("id"), errors=errors
                               ).group_by("day").values("day", "calls", "errors")
    calls_by_day = {_day(row["day"]): (int(row["calls"]), int(row["errors"])) for row in days}
    session_totals, sessions_by_day = await _session_figures(sessions, start, end)
    users = await logs.filter(user_id__isnull=False).annotate(calls=Count("id")).group_by(
        "user_id").order_by("-calls", "user_id").limit(MAX_GROUPS).values("user_id", "calls")
    people = {row.id: row for row in await User.filter(id__in=[row["user_id"] for row in users])}
    return UsageSummary(
        start=start, end=end,
        total_calls=int(totals["calls"] or 0), error_count=int(totals["errors"] or 0),
        avg_duration_ms=_float(totals["avg"]),
        p95_duration_ms=await _percentile(logs, int(totals["timed"] or 0)),
        by_tool=[ToolUsage(row["tool_name"], row["server_slug"], int(row["calls"]),
                           int(row["errors"]), _float(row["avg"])) for row in tools],
        by_day=[DayUsage(day, *calls_by_day.get(day, (0, 0)), *sessions_by_day.get(day, (0, 0)))
                for day in sorted(calls_by_day.keys() | sessions_by_day.keys())],
        by_user=[UserUsage(people[row["user_id"]], int(row["calls"]))
                 for row in users if row["user_id"] in people],
        total_sessions=int(session_totals["sessions"] or 0),
        distinct_clients=int(session_totals["clients"] or 0),
    )


async def team_usage(principal: Principal, team_id: str, *, start: datetime | None = None,
                     end: datetime | None = None, now: datetime | None = None) -> UsageSummary:
    """The usage of a team the caller belongs to (NOT_FOUND otherwise), over one period
    (by default the 30 days before `now`)."""
    await reads.require_team(principal, team_id)
    start, end = usage_period(start, end, now)
    return await summarize_usage(reads.usage_logs(principal, team_id=team_id),
                                 reports.client_sessions(principal, team_id=team_id),
                                 start, end)


__all__ = [
    "DEFAULT_PERIOD",
    "MAX_GROUPS",
    "MAX_PERIOD",
    "DayUsage",
    "ToolUsage",
    "UsageSummary",
    "UserUsage",
    "summarize_usage",
    "team_usage",
    "usage_period",
]
