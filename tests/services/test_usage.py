"""A team's tool usage summary (docs/graphql.md §3 `UsageSummary`): totals, percentile, groups,
the bounded period, and the scope (members see their team's, others nothing)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import aiohttp
import pytest

from app.errors import NotFound, ValidationError
from app.models import SatelliteUsageLog, Team, User
from app.models.enums import GlobalRole, TeamRole
from app.services.common.clock import utcnow
from app.services.people.principals import Principal
from app.services.telemetry.usage import MAX_PERIOD, team_usage, usage_period
from tests.fixtures.mcp import InstallFactory
from tests.fixtures.people import TeamFactory, UserFactory
from tests.fixtures.satellites import SatelliteFactory

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def member(user: User, team: Team, role: TeamRole = TeamRole.TEAM_USER) -> Principal:
    return Principal(user.id, user.email, GlobalRole.GLOBAL_USER, {team.id: role})


async def log_call(satellite_id: str, team: Team | None, tool: str, *, at: datetime,
                   duration: float | None = 10.0, success: bool = True,
                   user: User | None = None, server_slug: str = "filesystem") -> None:
    await SatelliteUsageLog.create(
        satellite_id=satellite_id, team_id=None if team is None else team.id,
        user_id=None if user is None else user.id, tool_name=tool, server_slug=server_slug,
        duration_ms=duration, success=success, occurred_at=at,
    )


async def test_the_summary_counts_calls_errors_durations_per_tool_day_and_user(
    make_team: TeamFactory, make_user: UserFactory, make_satellite: SatelliteFactory
) -> None:
    team, other_team = await make_team(), await make_team()
    alice, bob = await make_user(), await make_user()
    satellite = await make_satellite()
    day_one, day_two = NOW - timedelta(days=2), NOW - timedelta(days=1)
    for duration in range(1, 21):  # read_file: 20 calls, 1..20 ms, 2 failures, on day one
        await log_call(satellite.id, team, "read_file", at=day_one, duration=float(duration),
                       success=duration not in (3, 7), user=alice)
    await log_call(satellite.id, team, "search", at=day_two, duration=None, user=bob,
                   server_slug="web-search")
    await log_call(satellite.id, team, "search", at=day_two, duration=100.0, success=False)
    await log_call(satellite.id, other_team, "read_file", at=day_two, duration=5000.0)
    await log_call(satellite.id, team, "old", at=NOW - timedelta(days=40))

    summary = await team_usage(member(alice, team), team.id, end=NOW)

    assert (summary.total_calls, summary.error_count) == (22, 3)
    assert summary.avg_duration_ms == pytest.approx((210 + 100) / 21)
    # nearest rank of 21 timed calls: the 20th smallest (1..20, then 100)
    assert summary.p95_duration_ms == 20.0
    assert [(t.tool_name, t.server_slug, t.calls, t.errors) for t in summary.by_tool] == [
        ("read_file", "filesystem", 20, 2), ("search", "filesystem", 1, 1),
        ("search", "web-search", 1, 0)]
    assert summary.by_tool[0].avg_duration_ms == pytest.approx(10.5)
    assert [(d.date, d.calls, d.errors) for d in summary.by_day] == [
        (day_one.date(), 20, 2), (day_two.date(), 2, 1)]
    assert [(u.user.id, u.calls) for u in summary.by_user] == [(alice.id, 20), (bob.id, 1)]
    assert summary.start == NOW - timedelta(days=30)


async def test_an_empty_period_is_all_zero(make_team: TeamFactory, make_user: UserFactory
                                           ) -> None:
    team, user = await make_team(), await make_user()

    summary = await team_usage(member(user, team), team.id)

    assert (summary.total_calls, summary.error_count) == (0, 0)
    assert summary.avg_duration_ms is summary.p95_duration_ms is None
    assert summary.by_tool == summary.by_day == summary.by_user == []


async def test_another_teams_usage_is_not_found_before_the_period_is_checked(
    make_team: TeamFactory, make_user: UserFactory
) -> None:
    team, other_team, user = await make_team(), await make_team(), await make_user()
    outsider = Principal(user.id, user.email, GlobalRole.GLOBAL_USER, {})

    for principal in (member(user, team), outsider):
        with pytest.raises(NotFound):
            await team_usage(principal, other_team.id, start=NOW, end=NOW - timedelta(days=1))


async def test_global_admins_see_every_teams_usage(
    make_team: TeamFactory, make_user: UserFactory, make_satellite: SatelliteFactory
) -> None:
    team, admin = await make_team(), await make_user(global_role=GlobalRole.GLOBAL_ADMIN)
    satellite = await make_satellite()
    await log_call(satellite.id, team, "read_file", at=utcnow() - timedelta(hours=1))
    principal = Principal(admin.id, admin.email, GlobalRole.GLOBAL_ADMIN, {})

    assert (await team_usage(principal, team.id)).total_calls == 1


def test_the_period_defaults_to_the_last_30_days_and_is_bounded() -> None:
    assert usage_period(None, None, NOW) == (NOW - timedelta(days=30), NOW)
    naive = datetime(2026, 3, 1)  # noqa: DTZ001 - a client may send no offset: UTC
    assert usage_period(naive, None, NOW) == (naive.replace(tzinfo=UTC), NOW)
    with pytest.raises(ValidationError):
        usage_period(NOW, NOW - timedelta(seconds=1))
    with pytest.raises(ValidationError):
        usage_period(NOW - MAX_PERIOD - timedelta(days=1), NOW)


async def test_tool_calls_a_satellite_reports_show_up_in_its_teams_summary(
    http: aiohttp.ClientSession, make_team: TeamFactory, make_user: UserFactory,
    make_satellite: SatelliteFactory, install: InstallFactory,
) -> None:
    team, user = await make_team(), await make_user()
    satellite = await make_satellite()
    installation = await install(team.id)
    stamp = utcnow().isoformat().replace("+00:00", "Z")
    events = [
        {"type": "mcp.tool.executed", "timestamp": stamp,
         "data": {"tool_name": "read_file", "server_id": installation.id, "team_id": team.id,
                  "duration_ms": duration, "success": success}}
        for duration, success in ((12, True), (30, False))
    ]
    async with http.post(satellite.path("events"), data=json.dumps({"events": events}),
                         headers=satellite.headers) as response:
        assert response.status == 200, await response.text()

    summary = await team_usage(member(user, team), team.id)

    assert (summary.total_calls, summary.error_count) == (2, 1)
    assert summary.p95_duration_ms == 30.0
    assert [(t.tool_name, t.calls) for t in summary.by_tool] == [("read_file", 2)]
    assert [d.date for d in summary.by_day] == [date.fromisoformat(stamp[:10])]
