"""Per-minute and per-hour rollups of heartbeat metrics, written with the history rows
(docs/operations.md §12).

The flusher already holds every heartbeat of the flush; here they are folded into
one row per (satellite, resolution, bucket) and written with one multi-row upsert
per chunk: a bucket that spans several flushes adds counts and sums and keeps the
smaller minimum and the larger maximum. No write per heartbeat, and no read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from app.models import SatelliteMetricRollup
from app.services.common.storage import INSERT_CHUNK_ROWS, insert_sql, is_postgres

MINUTE = "minute"
HOUR = "hour"
RESOLUTIONS = (MINUTE, HOUR)

ROLLUP_COLUMNS = (
    "satellite_id", "team_id", "resolution", "bucket", "samples",
    "cpu_min", "cpu_sum", "cpu_max", "memory_min", "memory_sum", "memory_max",
    "disk_samples", "disk_min", "disk_sum", "disk_max", "process_min", "process_max",
    "error_max",
)
_ADDED = ("samples", "cpu_sum", "memory_sum", "disk_samples")
_SMALLER = ("cpu_min", "memory_min", "process_min")
_LARGER = ("cpu_max", "memory_max", "process_max", "error_max")
_TABLE = '"satellite_metric_rollups"'


def _upsert_suffix(postgres: bool) -> str:
    least, greatest = ("LEAST", "GREATEST") if postgres else ("MIN", "MAX")

    def either(function: str, column: str) -> str:
        # The disk columns may be NULL on either side: keep the other then.
        current, new = f'{_TABLE}."{column}"', f'excluded."{column}"'
        return (f'"{column}" = {function}(COALESCE({current}, {new}), '
                f"COALESCE({new}, {current}))")

    sets = [f'"{column}" = {_TABLE}."{column}" + excluded."{column}"' for column in _ADDED]
    sets.append(f'"disk_sum" = COALESCE({_TABLE}."disk_sum", 0) + '
                'COALESCE(excluded."disk_sum", 0)')
    sets += [f'"{column}" = {least}({_TABLE}."{column}", excluded."{column}")'
             for column in _SMALLER]
    sets += [f'"{column}" = {greatest}({_TABLE}."{column}", excluded."{column}")'
             for column in _LARGER]
    sets += [either(least, "disk_min"), either(greatest, "disk_max")]
    return (' ON CONFLICT ("satellite_id", "resolution", "bucket") DO UPDATE SET '
            + ", ".join(sets))


_SUFFIX = {postgres: _upsert_suffix(postgres) for postgres in (False, True)}


def bucket_start(at: datetime, resolution: str) -> datetime:
    if resolution == MINUTE:
        return at.replace(second=0, microsecond=0)
    return at.replace(minute=0, second=0, microsecond=0)


@dataclass(slots=True)
class _Bucket:
    samples: int
    cpu: list[float]  # min, sum, max
    memory: list[float]
    disk: list[float] | None
    disk_samples: int
    processes: list[int]  # min, max
    error_max: int

    @classmethod
    def of(cls, cpu: float, memory: float, disk: float | None, processes: int,
           errors: int) -> _Bucket:
        return cls(1, [cpu, cpu, cpu], [memory, memory, memory],
                   None if disk is None else [disk, disk, disk], 0 if disk is None else 1,
                   [processes, processes], errors)

    def add(self, cpu: float, memory: float, disk: float | None, processes: int,
            errors: int) -> None:
        self.samples += 1
        for values, value in ((self.cpu, cpu), (self.memory, memory)):
            values[0], values[1], values[2] = (min(values[0], value), values[1] + value,
                                               max(values[2], value))
        if disk is not None:
            self.disk_samples += 1
            if self.disk is None:
                self.disk = [disk, disk, disk]
            else:
                self.disk[0], self.disk[1], self.disk[2] = (
                    min(self.disk[0], disk), self.disk[1] + disk, max(self.disk[2], disk))
        self.processes[0] = min(self.processes[0], processes)
        self.processes[1] = max(self.processes[1], processes)
        self.error_max = max(self.error_max, errors)


def fold(history: Iterable[Sequence[Any]], team_of: Callable[[str], str | None],
         stored_time: Callable[[datetime], Any]) -> list[tuple[Any, ...]]:
    """Rollup rows (`ROLLUP_COLUMNS` order, as stored) of history rows in the flusher's
    `HISTORY_COLUMNS` order (time not yet converted)."""
    buckets: dict[tuple[str, str, datetime], _Bucket] = {}
    for row in history:
        satellite_id, at = row[0], row[1]
        cpu, memory, disk = float(row[3]), float(row[4]), row[5]
        processes, errors = int(row[9] or 0), int(row[10] or 0)
        disk_value = None if disk is None else float(disk)
        for resolution in RESOLUTIONS:
            key = (satellite_id, resolution, bucket_start(at, resolution))
            bucket = buckets.get(key)
            if bucket is None:
                buckets[key] = _Bucket.of(cpu, memory, disk_value, processes, errors)
            else:
                bucket.add(cpu, memory, disk_value, processes, errors)
    rows = []
    for (satellite_id, resolution, start), bucket in buckets.items():
        disk = bucket.disk or [None, None, None]
        rows.append((satellite_id, team_of(satellite_id), resolution, stored_time(start),
                     bucket.samples, *bucket.cpu, *bucket.memory, bucket.disk_samples,
                     *disk, bucket.processes[0], bucket.processes[1], bucket.error_max))
    return rows


async def upsert_rollups(conn: BaseDBAsyncClient, rows: Sequence[tuple[Any, ...]]) -> None:
    suffix = _SUFFIX[is_postgres(conn)]
    for start in range(0, len(rows), INSERT_CHUNK_ROWS):
        chunk = rows[start:start + INSERT_CHUNK_ROWS]
        sql = insert_sql(conn, SatelliteMetricRollup, ROLLUP_COLUMNS, len(chunk), suffix)
        await conn.execute_query(sql, [value for row in chunk for value in row])


__all__ = ["HOUR", "MINUTE", "RESOLUTIONS", "ROLLUP_COLUMNS", "bucket_start", "fold",
           "upsert_rollups"]
