"""Retention by count and by age (docs/architecture.md §3), never on the request path.

- heartbeat history: the newest `heartbeat_history_per_satellite` per satellite,
  none older than `heartbeat_retention_days`;
- events: the newest `event_retention_per_satellite` per satellite, none older
  than `event_retention_days`;
- audit entries older than `audit_retention_days`;
- stopped processes not updated for `process_retention_days`;
- terminal commands (completed, failed, expired, cancelled) older than
  `command_retention_days`;
- metric rollups: minute buckets older than `metrics_minute_retention_days`, hour
  buckets older than `metrics_hour_retention_days`.

A setting of 0 or less turns its rule off. Deletes are set-based, in bounded
chunks (short statements: the CLI may write the same SQLite file), and written
in SQL that SQLite and PostgreSQL both run (window functions for the counts).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from tortoise import connections
from tortoise.expressions import Q
from tortoise.functions import Count
from tortoise.models import Model
from tortoise.queryset import QuerySet

from app.models import (
    AuditEntry,
    SatelliteCommand,
    SatelliteEvent,
    SatelliteHeartbeat,
    SatelliteMetricRollup,
    SatelliteProcess,
)
from app.models.enums import TERMINAL_COMMAND_STATUSES, ProcessStatus
from app.services.context import Services

log = logging.getLogger(__name__)

DELETE_CHUNK = 5000
SATELLITES_PER_STATEMENT = 100


async def run_once(rt: Services) -> None:
    """Apply every retention rule once; log what was removed."""
    settings = rt.settings
    now = rt.clock.now()
    removed = {
        "heartbeats_over_count": await trim_per_satellite(
            SatelliteHeartbeat, settings.heartbeat_history_per_satellite,
            order_by='"timestamp" DESC, "id" DESC',
        ),
        "heartbeats_too_old": await _older_than(
            now, SatelliteHeartbeat, settings.heartbeat_retention_days,
            lambda cutoff: SatelliteHeartbeat.filter(timestamp__lt=cutoff),
        ),
        "events_over_count": await trim_per_satellite(
            SatelliteEvent, settings.event_retention_per_satellite, order_by='"id" DESC'
        ),
        "events_too_old": await _older_than(
            now, SatelliteEvent, settings.event_retention_days,
            lambda cutoff: SatelliteEvent.filter(created_at__lt=cutoff),
        ),
        "audit_too_old": await _older_than(
            now, AuditEntry, settings.audit_retention_days,
            lambda cutoff: AuditEntry.filter(at__lt=cutoff),
        ),
        "stopped_processes": await _older_than(
            now, SatelliteProcess, settings.process_retention_days,
            lambda cutoff: SatelliteProcess.filter(
                status=ProcessStatus.STOPPED, updated_at__lt=cutoff
            ),
        ),
        "minute_metrics_too_old": await _older_than(
            now, SatelliteMetricRollup, settings.metrics_minute_retention_days,
            lambda cutoff: SatelliteMetricRollup.filter(resolution="minute", bucket__lt=cutoff),
        ),
        "hour_metrics_too_old": await _older_than(
            now, SatelliteMetricRollup, settings.metrics_hour_retention_days,
            lambda cutoff: SatelliteMetricRollup.filter(resolution="hour", bucket__lt=cutoff),
        ),
        "finished_commands": await _older_than(
            now, SatelliteCommand, settings.command_retention_days,
            lambda cutoff: SatelliteCommand.filter(
                Q(completed_at__lt=cutoff) | Q(completed_at__isnull=True, created_at__lt=cutoff),
                status__in=list(TERMINAL_COMMAND_STATUSES),
            ),
        ),
    }
    if any(removed.values()):
        log.info("retention removed rows", extra={"op": "jobs.retention", **removed})


async def trim_per_satellite(model: type[Model], keep: int, *, order_by: str) -> int:
    """Keep the first `keep` rows per satellite in `order_by` order; delete the rest.

    Only satellites over the limit are touched (one GROUP BY … HAVING), then one
    DELETE with a window function per group of satellites.
    """
    if keep <= 0:
        return 0
    over = await (
        model.annotate(row_count=Count("id"))
        .group_by("satellite_id")
        .filter(row_count__gt=keep)
        .values_list("satellite_id", flat=True)
    )
    satellite_ids = [str(satellite_id) for satellite_id in over]
    removed = 0
    connection = connections.get("default")
    table = model._meta.db_table
    for start in range(0, len(satellite_ids), SATELLITES_PER_STATEMENT):
        chunk = satellite_ids[start:start + SATELLITES_PER_STATEMENT]
        marks = _placeholders(connection.capabilities.dialect, len(chunk))
        # Identifiers come from our models and `keep` is an int: nothing user-supplied.
        sql = (
            f'DELETE FROM "{table}" WHERE "id" IN ('  # noqa: S608
            f' SELECT "id" FROM ('
            f'  SELECT "id", ROW_NUMBER() OVER ('
            f'   PARTITION BY "satellite_id" ORDER BY {order_by}) AS keep_rank'
            f'  FROM "{table}" WHERE "satellite_id" IN ({marks})'
            f' ) ranked WHERE keep_rank > {int(keep)})'
        )
        count, _ = await connection.execute_query(sql, chunk)
        removed += count
    return removed


def _placeholders(dialect: str, count: int) -> str:
    if dialect == "postgres":
        return ", ".join(f"${index}" for index in range(1, count + 1))
    return ", ".join("?" for _ in range(count))


async def _older_than(
    now: datetime, model: type[Model], days: int, query: Callable[[Any], QuerySet[Any]]
) -> int:
    """Delete what `query(cutoff)` selects, `DELETE_CHUNK` rows per statement."""
    if days <= 0:
        return 0
    cutoff = now - timedelta(days=days)
    removed = 0
    while True:
        ids = await query(cutoff).limit(DELETE_CHUNK).values_list("id", flat=True)
        if not ids:
            return removed
        removed += await model.filter(id__in=list(ids)).delete()
        if len(ids) < DELETE_CHUNK:
            return removed
