"""The heartbeat buffer: telemetry and history rows waiting for the flusher.

Heartbeats are answered from memory; this recorder keeps what they changed and
writes it in one transaction per flush interval. A failed flush keeps its batch
for the next try; the buffer is bounded and drops the oldest history rows first
(counted in `groundstation_heartbeat_history_dropped_total`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from app.config import Settings
from app.db import DATABASE_ERRORS
from app.metrics import Metrics
from app.models import Satellite
from app.services.common.clock import SYSTEM_CLOCK, Clock
from app.services.common.storage import encode_json
from app.services.common.waiting import wait_or_stop
from app.services.fleet.flush_sql import insert_history, stored_time, update_telemetry
from app.services.fleet.processes import ProcessBatch, ProcessWriter, resolve_attributions
from app.services.fleet.rollups import fold, upsert_rollups
from app.services.fleet.state import SatelliteState
from app.wire.heartbeat import HeartbeatRequest

log = logging.getLogger(__name__)

# Process lists kept per satellite while flushes fail: enough to count the misses
# that stop a process; older lists only delay that.
MAX_PENDING_PROCESS_BATCHES = 4
# The same repairs from the same satellite are logged once per interval (a multi-core
# host reports CPU above 100 % in every heartbeat).
REPAIR_LOG_INTERVAL_SECONDS = 600.0
# Satellites per write transaction: short transactions let people's writes interleave.
FLUSH_CHUNK_SATELLITES = 500

# A history row in HISTORY_COLUMNS order (`flush_sql`), its time not yet converted.
HistoryRow = tuple[Any, ...]


@dataclass(slots=True)
class _PendingSatellite:
    """Telemetry not yet written for one satellite: the latest values win."""

    state: SatelliteState
    fields: dict[str, Any]
    process_batches: deque[ProcessBatch] = field(
        default_factory=lambda: deque(maxlen=MAX_PENDING_PROCESS_BATCHES)
    )

    def absorb(self, newer: _PendingSatellite) -> None:
        self.state = newer.state
        self.fields.update(newer.fields)
        self.process_batches.extend(newer.process_batches)


class HeartbeatRecorder:
    """The heartbeat buffer and its flusher."""

    def __init__(self, settings: Settings, metrics: Metrics, clock: Clock = SYSTEM_CLOCK) -> None:
        self._settings = settings
        self.processes = ProcessWriter(clock.monotonic)
        self._clock = clock
        self._metrics = metrics
        self._pending: dict[str, _PendingSatellite] = {}
        self._history: deque[HistoryRow] = deque()
        # History rows taken by a flush that has not finished: still buffered (a failed
        # flush puts them back), so they count as pending.
        self._in_flight_history = 0
        self._dropped_history = 0
        self._lock = asyncio.Lock()
        self._repairs_logged: dict[str, tuple[tuple[str, ...], float]] = {}

    # ---- buffering (request path: memory only) -----------------------------
    def buffer(self, state: SatelliteState, body: HeartbeatRequest, at: datetime) -> None:
        """Queue one heartbeat's telemetry, history row and process list for the next flush."""
        metrics = body.system_metrics
        process_count = state.process_count if body.processes is None else len(body.processes)
        fields: dict[str, Any] = {
            "last_heartbeat_at": at,
            "key_last_used_at": at,
            "latest_metrics": metrics.model_dump(exclude_none=True),
            "reported_status": body.status,
            "error_count": body.error_count,
        }
        if body.version is not None:
            fields["version"] = body.version
        if body.satellite_url:
            fields["satellite_url"] = body.satellite_url
        entry = _PendingSatellite(state, fields)
        if body.processes is not None:
            fields["process_count"] = process_count
            entry.process_batches.append(
                ProcessBatch(state.id, state.team_id, at, tuple(body.processes))
            )
        self._merge_pending(state.id, entry)
        self._history.append((  # in HISTORY_COLUMNS order; the time converted when written
            state.id, at, body.status.value, metrics.cpu_usage_percent, metrics.memory_usage_mb,
            metrics.disk_usage_percent, metrics.uptime_seconds, metrics.network_rx_bytes,
            metrics.network_tx_bytes, process_count, body.error_count,
        ))
        self._enforce_limit()

    def repairs_worth_logging(self, satellite_id: str, repairs: tuple[str, ...]) -> bool:
        """True for new repairs, or the same ones again after `REPAIR_LOG_INTERVAL_SECONDS`."""
        now = time.monotonic()
        last = self._repairs_logged.get(satellite_id)
        if last is not None and last[0] == repairs and now - last[1] < REPAIR_LOG_INTERVAL_SECONDS:
            return False
        self._repairs_logged[satellite_id] = (repairs, now)
        return True

    @property
    def pending_satellites(self) -> int:
        return len(self._pending)

    @property
    def pending_history(self) -> int:
        """History rows buffered and not yet written, including those a flush is writing."""
        return len(self._history) + self._in_flight_history

    def _merge_pending(self, satellite_id: str, entry: _PendingSatellite) -> None:
        current = self._pending.get(satellite_id)
        if current is None:
            self._pending[satellite_id] = entry
        else:
            current.absorb(entry)

    def _enforce_limit(self) -> None:
        limit = max(1, self._settings.flush_buffer_limit)
        dropped = 0
        while len(self._history) > limit:
            self._history.popleft()
            dropped += 1
        if dropped:
            self._dropped_history += dropped
            self._metrics.history_dropped.inc(dropped)

    # ---- flushing ----------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """The flusher loop: persist buffered heartbeats every flush interval until `stop`."""
        while not await wait_or_stop(stop, self._settings.flush_interval_seconds):
            await self.flush()

    async def flush(self) -> bool:
        """Persist everything buffered now (also called at shutdown).

        Returns False when the write failed; the batch then stays buffered for
        the next try (merged with what arrived meanwhile, newest values winning).
        """
        async with self._lock:
            if self._dropped_history:
                log.warning(
                    "heartbeat buffer full: oldest history rows dropped",
                    extra={"op": "heartbeat.flush", "dropped": self._dropped_history},
                )
                self._dropped_history = 0
            if not self._pending and not self._history:
                return True
            pending, history = self._pending, self._history
            self._pending, self._history = {}, deque()
            self._in_flight_history = len(history)
            started = time.perf_counter()
            try:
                await self._write(pending, history)
            except BaseException as error:
                self._in_flight_history = 0
                self._restore(pending, history)
                if not isinstance(error, Exception):
                    raise  # cancelled (shutdown): the final flush writes the batch
                # The flusher is the boundary of background persistence: whatever
                # failed, keep the batch, count, log, and try again next interval.
                self._metrics.flush_failures.inc()
                log.warning(
                    "heartbeat flush failed; keeping the batch for the next try",
                    exc_info=True,
                    extra={"op": "heartbeat.flush", "satellites": len(pending),
                           "history_rows": len(history)},
                )
                if isinstance(error, IntegrityError):
                    await self._forget_vanished_satellites()
                return False
            self._in_flight_history = 0
            self._metrics.flush_duration.observe(time.perf_counter() - started)
            return True

    async def _write(self, pending: dict[str, _PendingSatellite],
                     history: deque[HistoryRow]) -> None:
        """Write in transactions of up to `FLUSH_CHUNK_SATELLITES` satellites each (with
        their history rows), so people's writes interleave on a busy database.

        What a transaction wrote leaves `pending` and `history`; after a failure they
        hold exactly what is still to write.
        """
        batches = [batch for entry in pending.values() for batch in entry.process_batches]
        attributions = await resolve_attributions(batches) if batches else {}
        now = self._clock.now()
        rows_by_satellite: dict[str, list[HistoryRow]] = {}
        for row in history:
            rows_by_satellite.setdefault(row[0], []).append(row)
        satellite_ids = list(pending)

        def team_of(satellite_id: str) -> str | None:
            entry = pending.get(satellite_id)
            return None if entry is None else entry.state.team_id

        orphans = [row for row in history if row[0] not in pending]
        chunks = [satellite_ids[start:start + FLUSH_CHUNK_SATELLITES]
                  for start in range(0, len(satellite_ids), FLUSH_CHUNK_SATELLITES)] or [[]]
        for number, chunk in enumerate(chunks, start=1):
            rows = [row for satellite_id in chunk
                    for row in rows_by_satellite.get(satellite_id, ())]
            if number == len(chunks):
                rows.extend(orphans)
            async with in_transaction() as conn:
                # Telemetry first: the transaction starts with a write. `online` is read
                # now: the offline job may have changed it since the heartbeat arrived.
                await update_telemetry(conn, [_telemetry_row(pending[i]) for i in chunk])
                if rows:
                    await insert_history(conn, [_stored_history(row) for row in rows])
                    await upsert_rollups(conn, fold(rows, team_of, stored_time))
                remember = await self.processes.write(
                    conn, [b for i in chunk for b in pending[i].process_batches],
                    attributions, now)
            remember()
            for satellite_id in chunk:
                del pending[satellite_id]
            written = {id(row) for row in rows}
            remaining = deque(row for row in history if id(row) not in written)
            history.clear()
            history.extend(remaining)
            self._in_flight_history = len(history)

    def _restore(self, pending: dict[str, _PendingSatellite],
                 history: deque[HistoryRow]) -> None:
        newer, self._pending = self._pending, pending
        for satellite_id, entry in newer.items():
            self._merge_pending(satellite_id, entry)
        history.extend(self._history)
        self._history = history
        self._enforce_limit()

    async def _forget_vanished_satellites(self) -> None:
        """Drop buffered rows of satellites whose row is gone, so they cannot block every flush."""
        wanted = set(self._pending) | {row[0] for row in self._history}
        try:
            existing = set(
                await Satellite.filter(id__in=list(wanted)).values_list("id", flat=True)
            )
        except DATABASE_ERRORS:
            return
        vanished = wanted - {str(satellite_id) for satellite_id in existing}
        if not vanished:
            return
        for satellite_id in vanished:
            self._pending.pop(satellite_id, None)
        self._history = deque(row for row in self._history if row[0] not in vanished)
        log.warning("dropped buffered heartbeats of deleted satellites",
                    extra={"op": "heartbeat.flush", "satellites": len(vanished)})


def _telemetry_row(entry: _PendingSatellite) -> tuple[Any, ...]:
    fields = entry.fields
    metrics = fields["latest_metrics"]
    return (
        entry.state.id, entry.state.online, stored_time(fields["last_heartbeat_at"]),
        stored_time(fields["key_last_used_at"]),
        None if metrics is None else encode_json(metrics), fields["reported_status"].value,
        fields["error_count"], fields.get("version"), fields.get("satellite_url"),
        fields.get("process_count"),
    )


def _stored_history(row: HistoryRow) -> tuple[Any, ...]:
    return (row[0], stored_time(row[1]), *row[2:])
