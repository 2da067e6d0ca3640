"""Set-based statements of the heartbeat flusher (docs/architecture.md §4).

Why hand-written SQL: a flush at 10,000 satellites carries hundreds of
satellites' telemetry and processes every second, and building one ORM
statement per satellite (pypika assembling criteria on the event loop) cost
more than the database spent executing them. Each writer here is a fixed
statement per dialect and row count, cached, with every value bound:

- telemetry: one multi-row `UPDATE … FROM (VALUES …)` for all satellites;
- history: one multi-row `INSERT` (`insert_rows`);
- processes: one multi-row `INSERT … ON CONFLICT DO UPDATE` for every reported
  process that changed;
- missed heartbeats: one `UPDATE` that counts a miss for every live process of
  the flushed satellites that their heartbeat did not report, and stops those
  missed `STOPPED_AFTER_MISSED` times.

SQLite needs 3.33 or newer for `UPDATE … FROM`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from app.models import Satellite, SatelliteHeartbeat, SatelliteProcess
from app.models.enums import ProcessStatus
from app.services.common.storage import (
    INSERT_CHUNK_ROWS,
    encode_json,
    insert_rows,
    insert_sql,
    is_postgres,
)

STOPPED_AFTER_MISSED = 3
# Separates satellite id and process id in the reported-set key (never in an id).
KEY_SEPARATOR = "\x1f"

TELEMETRY_COLUMNS = (
    "id", "online", "last_heartbeat_at", "key_last_used_at", "latest_metrics",
    "reported_status", "error_count", "version", "satellite_url", "process_count",
)
_TELEMETRY_PG_TYPES = (
    "varchar", "boolean", "timestamptz", "timestamptz", "jsonb", "varchar", "integer",
    "varchar", "varchar", "integer",
)
# Kept when a heartbeat did not send them (NULL in the row).
_TELEMETRY_KEPT = frozenset({"version", "satellite_url", "process_count"})
# Telemetry rows per statement: 10 values each, well under both dialects' limits.
TELEMETRY_CHUNK_ROWS = 500

HISTORY_COLUMNS = (
    "satellite_id", "timestamp", "status", "cpu_usage_percent", "memory_usage_mb",
    "disk_usage_percent", "uptime_seconds", "network_rx_bytes", "network_tx_bytes",
    "process_count", "error_count",
)

PROCESS_COLUMNS = (
    "id", "satellite_id", "process_id", "server_name", "status", "health_status",
    "performance_metrics", "installation_id", "team_id", "missed_heartbeats", "started_at",
    "last_reported_at", "created_at", "updated_at",
)
# What a report overwrites on an existing row (`started_at`, `created_at` stay).
_PROCESS_UPDATED = (
    "server_name", "status", "health_status", "performance_metrics", "installation_id",
    "team_id", "missed_heartbeats", "last_reported_at", "updated_at",
)
_PROCESS_UPSERT = (
    ' ON CONFLICT ("satellite_id", "process_id") DO UPDATE SET '
    + ", ".join(f'"{column}" = excluded."{column}"' for column in _PROCESS_UPDATED)
)


@functools.lru_cache(maxsize=64)
def _telemetry_sql(postgres: bool, rows: int) -> str:
    width = len(TELEMETRY_COLUMNS)
    if postgres:
        values = ", ".join(
            "(" + ", ".join(f"${row * width + column + 1}::{_TELEMETRY_PG_TYPES[column]}"
                            for column in range(width)) + ")"
            for row in range(rows)
        )
        source = f"v({', '.join(TELEMETRY_COLUMNS)})"
        ref = {name: f"v.{name}" for name in TELEMETRY_COLUMNS}
    else:
        values = ", ".join(["(" + ", ".join(["?"] * width) + ")"] * rows)
        source = "v"
        ref = {name: f"v.column{index + 1}" for index, name in enumerate(TELEMETRY_COLUMNS)}
    sets = ", ".join(
        f'"{name}" = COALESCE({ref[name]}, "satellites"."{name}")' if name in _TELEMETRY_KEPT
        else f'"{name}" = {ref[name]}'
        for name in TELEMETRY_COLUMNS[1:]
    )
    return (f'UPDATE "satellites" SET {sets} FROM (VALUES {values}) AS {source} '  # noqa: S608
            f'WHERE "satellites"."id" = {ref["id"]}')


async def update_telemetry(conn: BaseDBAsyncClient, rows: Sequence[tuple[Any, ...]]) -> None:
    """Rows in `TELEMETRY_COLUMNS` order, as stored (JSON encoded, datetimes converted);
    None for a kept column leaves it as it is. `updated_at` and `revision` stay:
    telemetry is not an administrative change."""
    postgres = is_postgres(conn)
    for start in range(0, len(rows), TELEMETRY_CHUNK_ROWS):
        chunk = rows[start:start + TELEMETRY_CHUNK_ROWS]
        await conn.execute_query(_telemetry_sql(postgres, len(chunk)),
                                 [value for row in chunk for value in row])


async def insert_history(conn: BaseDBAsyncClient, rows: Sequence[tuple[Any, ...]]) -> None:
    """History rows in `HISTORY_COLUMNS` order, as stored."""
    await insert_rows(conn, SatelliteHeartbeat, HISTORY_COLUMNS, rows)


async def upsert_processes(conn: BaseDBAsyncClient, rows: Sequence[tuple[Any, ...]]) -> None:
    """Process rows in `PROCESS_COLUMNS` order: inserted, or their reported fields
    overwritten (the missed count back to 0) where `(satellite_id, process_id)` exists."""
    for start in range(0, len(rows), INSERT_CHUNK_ROWS):
        chunk = rows[start:start + INSERT_CHUNK_ROWS]
        sql = insert_sql(conn, SatelliteProcess, PROCESS_COLUMNS, len(chunk), _PROCESS_UPSERT)
        await conn.execute_query(sql, [value for row in chunk for value in row])


_STOPPED = ProcessStatus.STOPPED.value
_MISSED_SETS = (
    '"missed_heartbeats" = "missed_heartbeats" + 1, '
    f'"status" = CASE WHEN "missed_heartbeats" + 1 >= {STOPPED_AFTER_MISSED} '
    f"THEN '{_STOPPED}' ELSE \"status\" END, "
    f'"updated_at" = CASE WHEN "missed_heartbeats" + 1 >= {STOPPED_AFTER_MISSED} '
    'THEN {now} ELSE "updated_at" END'
)
_MISSED_SQLITE = (
    f'UPDATE "satellite_processes" SET {_MISSED_SETS.format(now="?")} '  # noqa: S608
    f"WHERE \"status\" <> '{_STOPPED}' "
    'AND "satellite_id" IN (SELECT value FROM json_each(?)) '
    "AND \"satellite_id\" || char(31) || \"process_id\" NOT IN (SELECT value FROM json_each(?))"
)
_MISSED_POSTGRES = (
    f'UPDATE "satellite_processes" SET {_MISSED_SETS.format(now="$1::timestamptz")} '  # noqa: S608
    f"WHERE \"status\" <> '{_STOPPED}' "
    'AND "satellite_id" = ANY($2::varchar[]) '
    "AND \"satellite_id\" || chr(31) || \"process_id\" NOT IN (SELECT unnest($3::varchar[]))"
)


def reported_key(satellite_id: str, process_id: str) -> str:
    return f"{satellite_id}{KEY_SEPARATOR}{process_id}"


async def count_missed(conn: BaseDBAsyncClient, satellite_ids: Sequence[str],
                       reported: Sequence[str], stopped_at: Any) -> None:
    """One miss for every live process of `satellite_ids` whose `reported_key` is not in
    `reported`; those missed `STOPPED_AFTER_MISSED` times in a row become `stopped`."""
    if is_postgres(conn):
        await conn.execute_query(_MISSED_POSTGRES, [stopped_at, list(satellite_ids),
                                                    list(reported)])
    else:
        await conn.execute_query(_MISSED_SQLITE, [stopped_at, encode_json(list(satellite_ids)),
                                                  encode_json(list(reported))])


def stored_time(value: datetime) -> Any:
    """A datetime as the models' datetime fields store it."""
    return _DATETIME_FIELD.to_db_value(value, Satellite)


_DATETIME_FIELD = Satellite._meta.fields_map["last_heartbeat_at"]


__all__ = [
    "HISTORY_COLUMNS",
    "PROCESS_COLUMNS",
    "STOPPED_AFTER_MISSED",
    "TELEMETRY_COLUMNS",
    "count_missed",
    "insert_history",
    "reported_key",
    "stored_time",
    "update_telemetry",
    "upsert_processes",
]
