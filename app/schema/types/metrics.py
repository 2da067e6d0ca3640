"""Metric history buckets for charts and capacity planning (docs/operations.md §12)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from app.models import SatelliteMetricRollup
from app.services.telemetry.usage_history import UsageBucket as UsageFigures


@strawberry.enum
class MetricsResolution(Enum):
    MINUTE = "minute"
    HOUR = "hour"


def _average(total: float | None, count: int) -> float | None:
    return None if total is None or count == 0 else total / count


@strawberry.type
class MetricsBucket:
    """The heartbeats whose time falls in [start, start + resolution)."""

    start: datetime
    samples: int
    cpu_min: float
    cpu_avg: float
    cpu_max: float
    memory_min_mb: float
    memory_avg_mb: float
    memory_max_mb: float
    disk_min: float | None
    disk_avg: float | None
    disk_max: float | None
    process_min: int
    process_max: int
    error_max: int

    @classmethod
    def of(cls, row: SatelliteMetricRollup) -> MetricsBucket:
        return cls(
            start=row.bucket, samples=row.samples, cpu_min=row.cpu_min,
            cpu_avg=row.cpu_sum / row.samples, cpu_max=row.cpu_max,
            memory_min_mb=row.memory_min, memory_avg_mb=row.memory_sum / row.samples,
            memory_max_mb=row.memory_max, disk_min=row.disk_min,
            disk_avg=_average(row.disk_sum, row.disk_samples), disk_max=row.disk_max,
            process_min=row.process_min, process_max=row.process_max, error_max=row.error_max,
        )


@strawberry.type
class UsageBucket:
    """A team's usage in [start, start + resolution)."""

    start: datetime
    calls: int
    errors: int
    sessions: int = strawberry.field(description="Client sessions that began in the bucket.")
    distinct_clients: int

    @classmethod
    def of(cls, bucket: UsageFigures) -> UsageBucket:
        return cls(start=bucket.start, calls=bucket.calls, errors=bucket.errors,
                   sessions=bucket.sessions, distinct_clients=bucket.distinct_clients)


__all__ = ["MetricsBucket", "MetricsResolution", "UsageBucket"]
