"""A team's usage per hour and minute (`Team.usageHistory`, docs/operations.md §12),
from real event batches: calls, failed calls, sessions begun and distinct clients."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp

from app.models.enums import SatelliteType, TeamRole
from tests.fixtures.graphql import ClientFactory
from tests.fixtures.live import post_events
from tests.fixtures.people import TeamFactory
from tests.fixtures.satellites import SatelliteFactory
from tests.schema.test_satellite_reports import CURSOR, VSCODE, connected, reported

HISTORY = """query($id: ID!, $from: DateTime!, $to: DateTime!, $resolution: MetricsResolution!) {
  team(id: $id) { usageHistory(from: $from, to: $to, resolution: $resolution) {
    start calls errors sessions distinctClients } } }"""


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


async def test_usage_history_counts_per_bucket_and_fills_the_quiet_ones(
    http: aiohttp.ClientSession, graphql_as: ClientFactory, make_team: TeamFactory,
    make_satellite: SatelliteFactory,
) -> None:
    team, other = await make_team(), await make_team()
    satellite = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=team.id)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    calls = [(hour + timedelta(minutes=5, seconds=s), ok) for s, ok in
             ((1, True), (20, False), (40, True))]
    calls.append((hour + timedelta(hours=1, minutes=30), True))
    await post_events(http, satellite, [
        *[reported("mcp.tool.executed", team.id, at, success=ok) for at, ok in calls],
        connected("s-1", team.id, hour + timedelta(minutes=10), VSCODE),
        connected("s-2", team.id, hour + timedelta(minutes=11), CURSOR),
        connected("s-3", team.id, hour + timedelta(minutes=12), VSCODE),
    ])
    member = await graphql_as(teams={team.id: TeamRole.TEAM_USER})
    span = {"id": team.id, "from": _iso(hour), "to": _iso(hour + timedelta(hours=2))}

    hourly = (await member.data(HISTORY, {**span, "resolution": "HOUR"}))["team"][
        "usageHistory"]
    assert hourly == [
        {"start": _iso(hour), "calls": 3, "errors": 1, "sessions": 3, "distinctClients": 2},
        {"start": _iso(hour + timedelta(hours=1)), "calls": 1, "errors": 0, "sessions": 0,
         "distinctClients": 0},
    ]
    minutes = (await member.data(HISTORY, {**span, "resolution": "MINUTE"}))["team"][
        "usageHistory"]
    assert len(minutes) == 120
    busy = {bucket["start"]: bucket["calls"] for bucket in minutes if bucket["calls"]}
    assert busy == {_iso(hour + timedelta(minutes=5)): 3,
                    _iso(hour + timedelta(hours=1, minutes=30)): 1}

    outsider = await graphql_as(teams={other.id: TeamRole.TEAM_ADMIN})
    assert (await outsider.data(HISTORY, {**span, "resolution": "HOUR"}))["team"] is None
