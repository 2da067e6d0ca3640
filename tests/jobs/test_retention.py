"""Retention by count and by age (docs/architecture.md §3)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from app.config import Settings
from app.jobs import retention
from app.models import (
    AuditEntry,
    SatelliteCommand,
    SatelliteEvent,
    SatelliteHeartbeat,
    SatelliteMetricRollup,
    SatelliteProcess,
)
from app.models.enums import (
    CommandPriority,
    CommandStatus,
    CommandType,
    ProcessStatus,
    ReportedStatus,
)
from app.runtime import Runtime
from app.services.common.actors import SYSTEM_ACTOR
from app.services.common.audit import record_audit
from app.services.common.clock import utcnow
from tests.fixtures.satellites import SatelliteFactory, TestSatellite
from tests.fixtures.server import make_settings

HISTORY_PER_SATELLITE = 3
EVENTS_PER_SATELLITE = 2


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path,
        heartbeat_history_per_satellite=HISTORY_PER_SATELLITE,
        event_retention_per_satellite=EVENTS_PER_SATELLITE,
        retention_interval_seconds=3600,  # runs when the test says so (and once at start)
    )


def days_ago(days: float) -> timedelta:
    return timedelta(days=days)


async def beat(http: aiohttp.ClientSession, satellite: TestSatellite, cpu: float) -> None:
    body = {"status": "active", "system_metrics": {"cpu_usage_percent": cpu,
                                                   "memory_usage_mb": 1}}
    async with http.post(satellite.path("heartbeat"), data=json.dumps(body),
                         headers=satellite.headers) as response:
        assert response.status == 200


async def old_heartbeat(satellite: TestSatellite, age: timedelta) -> None:
    await SatelliteHeartbeat.create(
        satellite_id=satellite.id, timestamp=utcnow() - age, status=ReportedStatus.ACTIVE,
        cpu_usage_percent=1, memory_usage_mb=1,
    )


async def event(satellite: TestSatellite, age: timedelta) -> SatelliteEvent:
    row = await SatelliteEvent.create(satellite_id=satellite.id, event_type="mcp.server.started",
                                      occurred_at=utcnow() - age, data={})
    await SatelliteEvent.filter(id=row.id).update(created_at=utcnow() - age)
    return row


async def test_heartbeat_history_keeps_the_newest_rows_per_satellite(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, rt: Runtime
) -> None:
    busy = await make_satellite()
    quiet = await make_satellite()
    for cpu in range(1, 7):
        await beat(http, busy, cpu)
    await beat(http, quiet, 50)
    assert await rt.heartbeats.flush()

    await retention.run_once(rt)

    kept = await SatelliteHeartbeat.filter(satellite_id=busy.id).order_by("timestamp")
    assert [row.cpu_usage_percent for row in kept] == [4, 5, 6]
    assert await SatelliteHeartbeat.filter(satellite_id=quiet.id).count() == 1


async def test_heartbeat_history_older_than_the_retention_age_is_removed(
    make_satellite: SatelliteFactory, rt: Runtime
) -> None:
    satellite = await make_satellite()
    await old_heartbeat(satellite, days_ago(rt.settings.heartbeat_retention_days + 1))
    await old_heartbeat(satellite, days_ago(1))

    await retention.run_once(rt)

    remaining = await SatelliteHeartbeat.filter(satellite_id=satellite.id)
    assert len(remaining) == 1
    assert remaining[0].timestamp > utcnow() - days_ago(2)


async def test_events_are_kept_by_count_and_by_age(
    make_satellite: SatelliteFactory, rt: Runtime
) -> None:
    chatty = await make_satellite()
    old_only = await make_satellite()
    rows = [await event(chatty, days_ago(1)) for _ in range(4)]
    await event(old_only, days_ago(rt.settings.event_retention_days + 1))
    recent = await event(old_only, days_ago(0))

    await retention.run_once(rt)

    kept = await SatelliteEvent.filter(satellite_id=chatty.id).order_by("id")
    assert [row.id for row in kept] == [row.id for row in rows[-EVENTS_PER_SATELLITE:]]
    assert [row.id for row in await SatelliteEvent.filter(satellite_id=old_only.id)] == [
        recent.id
    ]


async def test_audit_entries_older_than_the_retention_age_are_removed(rt: Runtime) -> None:
    old = await record_audit("test.old", actor=SYSTEM_ACTOR)
    await AuditEntry.filter(id=old.id).update(
        at=utcnow() - days_ago(rt.settings.audit_retention_days + 1)
    )
    recent = await record_audit("test.recent", actor=SYSTEM_ACTOR)

    await retention.run_once(rt)

    assert not await AuditEntry.filter(id=old.id).exists()
    assert await AuditEntry.filter(id=recent.id).exists()


async def test_only_long_stopped_processes_are_pruned(
    make_satellite: SatelliteFactory, rt: Runtime
) -> None:
    satellite = await make_satellite()
    long_ago = utcnow() - days_ago(rt.settings.process_retention_days + 1)
    for process_id, status, updated in [
        ("stopped-long-ago", ProcessStatus.STOPPED, long_ago),
        ("stopped-recently", ProcessStatus.STOPPED, utcnow()),
        ("running-for-ages", ProcessStatus.RUNNING, long_ago),
    ]:
        row = await SatelliteProcess.create(satellite_id=satellite.id, process_id=process_id,
                                            status=status)
        await SatelliteProcess.filter(id=row.id).update(updated_at=updated)

    await retention.run_once(rt)

    remaining = [row.process_id
                 for row in await SatelliteProcess.filter(satellite_id=satellite.id)]
    assert sorted(remaining) == ["running-for-ages", "stopped-recently"]


async def test_only_old_finished_commands_are_pruned(
    make_satellite: SatelliteFactory, rt: Runtime
) -> None:
    satellite = await make_satellite()
    long_ago = utcnow() - days_ago(rt.settings.command_retention_days + 1)

    async def command(status: CommandStatus, completed_at: object, created_at: object
                      ) -> SatelliteCommand:
        row = await SatelliteCommand.create(
            satellite_id=satellite.id, command_type=CommandType.CONFIGURE,
            priority=CommandPriority.NORMAL, priority_rank=CommandPriority.NORMAL.rank,
            status=status, expires_at=utcnow() + timedelta(minutes=5), completed_at=completed_at,
        )
        await SatelliteCommand.filter(id=row.id).update(created_at=created_at)
        return row

    old_done = await command(CommandStatus.COMPLETED, long_ago, long_ago)
    old_expired = await command(CommandStatus.EXPIRED, None, long_ago)
    recent_failed = await command(CommandStatus.FAILED, utcnow(), long_ago)
    old_pending = await command(CommandStatus.PENDING, None, long_ago)

    await retention.run_once(rt)

    remaining = {row.id for row in await SatelliteCommand.filter(satellite_id=satellite.id)}
    assert old_done.id not in remaining
    assert old_expired.id not in remaining
    assert {recent_failed.id, old_pending.id} <= remaining


async def test_count_retention_handles_many_satellites_in_chunks(
    make_satellite: SatelliteFactory, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention, "SATELLITES_PER_STATEMENT", 2)
    satellites = [await make_satellite() for _ in range(5)]
    for satellite in satellites:
        for hours in range(HISTORY_PER_SATELLITE + 2):
            await old_heartbeat(satellite, timedelta(hours=hours))

    await retention.run_once(rt)

    for satellite in satellites:
        kept = [row.timestamp
                for row in await SatelliteHeartbeat.filter(satellite_id=satellite.id)]
        assert len(kept) == HISTORY_PER_SATELLITE
        assert min(kept) > utcnow() - timedelta(hours=HISTORY_PER_SATELLITE)


async def _rollup(satellite: TestSatellite, resolution: str, age: timedelta) -> None:
    await SatelliteMetricRollup.create(
        satellite_id=satellite.id, resolution=resolution,
        bucket=(utcnow() - age).replace(second=0, microsecond=0), samples=1, cpu_min=1,
        cpu_sum=1, cpu_max=1, memory_min=1, memory_sum=1, memory_max=1, process_min=0,
        process_max=0, error_max=0)


async def test_metric_history_is_kept_per_resolution(
    make_satellite: SatelliteFactory, rt: Runtime
) -> None:
    satellite = await make_satellite()
    minute_days = rt.settings.metrics_minute_retention_days
    hour_days = rt.settings.metrics_hour_retention_days
    await _rollup(satellite, "minute", days_ago(minute_days + 0.5))  # removed
    await _rollup(satellite, "minute", days_ago(minute_days - 0.5))
    await _rollup(satellite, "hour", days_ago(minute_days + 0.5))  # hours live longer
    await _rollup(satellite, "hour", days_ago(hour_days + 1))  # removed

    await retention.run_once(rt)

    kept = await SatelliteMetricRollup.filter(satellite_id=satellite.id).order_by(
        "resolution", "bucket").values_list("resolution", flat=True)
    assert list(kept) == ["hour", "minute"]
