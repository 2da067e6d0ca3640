"""Metric history (docs/operations.md §12): a day of heartbeats, written through the
heartbeat service with a controlled clock, read back per minute and per hour with the
same minimum, average and maximum as the raw values."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.config import Settings
from app.models import SatelliteMetricRollup
from app.models.enums import GlobalRole, SatelliteType, TeamRole
from app.runtime import Runtime
from app.services.common.clock import ManualClock
from app.services.fleet.heartbeats import record_heartbeat
from app.wire.heartbeat import HeartbeatRequest
from tests.fixtures.graphql import ClientFactory
from tests.fixtures.people import TeamFactory
from tests.fixtures.satellites import SatelliteFactory
from tests.fixtures.server import make_settings

START = datetime(2026, 12, 1, tzinfo=UTC)
DAY_MINUTES = 24 * 60
HISTORY = """query($id: ID!, $from: DateTime!, $to: DateTime!, $resolution: MetricsResolution!) {
  satellite(id: $id) { metricsHistory(from: $from, to: $to, resolution: $resolution) {
    start samples cpuMin cpuAvg cpuMax memoryMinMb memoryAvgMb memoryMaxMb
    diskMin diskAvg diskMax processMax } } }"""


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # The flusher waits: the test flushes itself, so the buffer holds many heartbeats.
    return make_settings(tmp_path, flush_interval_seconds=3600)


def _minute_key(at: datetime) -> str:
    return at.replace(second=0, microsecond=0).isoformat().replace("+00:00", "Z")


async def test_a_day_of_heartbeats_reads_back_as_1440_exact_minute_buckets(
    rt: Runtime, clock: ManualClock, graphql_as: ClientFactory, make_team: TeamFactory,
    make_satellite: SatelliteFactory,
) -> None:
    team = await make_team()
    satellite = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=team.id)
    state = rt.fleet.get(satellite.id)
    assert state is not None
    rng = random.Random(7)
    raw: dict[str, list[tuple[float, float, float | None]]] = defaultdict(list)
    hours: dict[int, list[float]] = defaultdict(list)
    for minute in range(DAY_MINUTES):
        for second in (3, 25, 47):  # three heartbeats a minute, at varying values
            clock.set(START + timedelta(minutes=minute, seconds=second))
            cpu = round(rng.uniform(0, 100), 2)
            memory = round(rng.uniform(100, 4000), 1)
            disk = None if second == 25 else round(rng.uniform(10, 90), 1)
            await record_heartbeat(rt, state, HeartbeatRequest.model_validate({
                "status": "active", "system_metrics": {
                    "cpu_usage_percent": cpu, "memory_usage_mb": memory,
                    "disk_usage_percent": disk}}), "203.0.113.9")
            raw[_minute_key(clock.now())].append((cpu, memory, disk))
            hours[minute // 60].append(cpu)
        if minute % 90 == 89:  # flushes land mid-minute and mid-hour: buckets span flushes
            assert await rt.heartbeats.flush()
    assert await rt.heartbeats.flush()

    member = await graphql_as(teams={team.id: TeamRole.TEAM_USER})
    variables = {"id": satellite.id, "from": START.isoformat(),
                 "to": (START + timedelta(days=1)).isoformat(), "resolution": "MINUTE"}
    buckets = (await member.data(HISTORY, variables))["satellite"]["metricsHistory"]

    assert len(buckets) == DAY_MINUTES
    for bucket in buckets:
        values = raw[bucket["start"]]
        cpus, memories = [v[0] for v in values], [v[1] for v in values]
        disks = [v[2] for v in values if v[2] is not None]
        assert bucket["samples"] == 3
        assert (bucket["cpuMin"], bucket["cpuMax"]) == (min(cpus), max(cpus))
        assert bucket["cpuAvg"] == pytest.approx(sum(cpus) / 3)
        assert (bucket["memoryMinMb"], bucket["memoryMaxMb"]) == (min(memories), max(memories))
        assert bucket["memoryAvgMb"] == pytest.approx(sum(memories) / 3)
        assert (bucket["diskMin"], bucket["diskMax"]) == (min(disks), max(disks))
        assert bucket["diskAvg"] == pytest.approx(sum(disks) / len(disks))

    hourly = (await member.data(HISTORY, {**variables, "resolution": "HOUR"})
              )["satellite"]["metricsHistory"]
    assert [bucket["samples"] for bucket in hourly] == [180] * 24
    for hour, bucket in enumerate(hourly):
        assert bucket["cpuMax"] == max(hours[hour])
        assert bucket["cpuAvg"] == pytest.approx(sum(hours[hour]) / 180)
    assert await SatelliteMetricRollup.filter(satellite_id=satellite.id).count() == (
        DAY_MINUTES + 24)


async def test_history_is_scoped_and_bounded(
    rt: Runtime, graphql_as: ClientFactory, make_team: TeamFactory,
    make_satellite: SatelliteFactory,
) -> None:
    team, other = await make_team(), await make_team()
    ours = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=team.id)
    theirs = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=other.id)
    shared = await make_satellite(satellite_type=SatelliteType.GLOBAL)
    member = await graphql_as(teams={team.id: TeamRole.TEAM_USER})
    admin = await graphql_as(global_role=GlobalRole.GLOBAL_ADMIN)
    day = {"from": START.isoformat(), "to": (START + timedelta(days=1)).isoformat(),
           "resolution": "MINUTE"}

    assert (await member.data(HISTORY, {**day, "id": theirs.id}))["satellite"] is None
    assert await member.error_code(HISTORY, {**day, "id": shared.id}) == "FORBIDDEN"
    assert (await admin.data(HISTORY, {**day, "id": shared.id}))["satellite"][
        "metricsHistory"] == []
    too_long = {**day, "to": (START + timedelta(days=8)).isoformat(), "id": ours.id}
    assert await member.error_code(HISTORY, too_long) == "VALIDATION"
    backwards = {**day, "from": day["to"], "to": day["from"], "id": ours.id}
    assert await member.error_code(HISTORY, backwards) == "VALIDATION"
