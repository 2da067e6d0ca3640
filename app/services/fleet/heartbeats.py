"""Heartbeats (docs/protocol.md §6): answered from memory, persisted in batches.

`record_heartbeat()` applies a heartbeat to the satellite's in-memory state at
once and leaves persistence to `HeartbeatRecorder`, whose flusher writes every
pending heartbeat in one transaction each flush interval. So the answer never
waits for the database (docs/architecture.md §4) and a database hiccup only delays
persistence: a failed flush keeps its batch for the next try, and the buffer
is bounded (the oldest history rows go first). The one exception is the rare
activation of an `inactive` satellite, a single conditional write.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from app.bus import Channels
from app.db import DATABASE_ERRORS
from app.models.enums import SatelliteStatus
from app.services.common.actors import satellite_actor
from app.services.common.audit import record_audit
from app.services.common.clock import iso
from app.services.fleet.state import SatelliteState
from app.wire.heartbeat import HeartbeatRequest

if TYPE_CHECKING:
    from app.services.fleet.context import FleetContext

log = logging.getLogger(__name__)

@dataclass(frozen=True, slots=True)
class HeartbeatAck:
    server_time: datetime
    heartbeat_interval: int


async def record_heartbeat(
    rt: FleetContext, state: SatelliteState, body: HeartbeatRequest, address: str
) -> HeartbeatAck:
    """Apply a heartbeat to memory at once; persistence follows with the next flush.

    - last heartbeat, metrics, version, reported status and process count are
      kept; `satellite_url` only when non-empty; the satellite is online;
    - an `inactive` satellite becomes `active` (one conditional write); a status
      an administrator set (`maintenance`, `disabled`) is never changed here;
    - activation and offline→online are published on `satellite.status`, every
      heartbeat on `satellite.heartbeat`.
    """
    now = rt.clock.now()
    if body.repairs and rt.heartbeats.repairs_worth_logging(state.id, body.repairs):
        log.warning(
            "heartbeat repaired instead of refused",
            extra={"op": "heartbeat", "satellite_id": state.id, "repairs": list(body.repairs)},
        )
    was_online, previous_status = state.online, state.status
    state.last_heartbeat_at = now
    state.latest_metrics = body.system_metrics.model_dump(exclude_none=True)
    state.reported_status = body.status.value
    if body.version is not None:
        state.version = body.version
    if body.processes is not None:
        state.process_count = len(body.processes)
    state.online = True
    # Claimed before any await, like `online`: of concurrent first heartbeats, exactly
    # one activates and publishes (one `satellite.status` message per transition).
    activating = state.status is SatelliteStatus.INACTIVE
    if activating:
        state.status = SatelliteStatus.ACTIVE
    rt.heartbeats.buffer(state, body, now)
    rt.metrics.heartbeats.inc()
    if not was_online:
        rt.metrics.online_satellites.inc()
    if activating:
        await _activate(rt, state, address)
    if not was_online or activating:
        await rt.bus.publish(Channels.SATELLITE_STATUS, status_message(state, previous_status, now))
    await rt.bus.publish(
        Channels.SATELLITE_HEARTBEAT,
        {
            "satellite_id": state.id,
            "team_id": state.team_id,
            "timestamp": iso(now),
            "cpu_usage_percent": body.system_metrics.cpu_usage_percent,
            "memory_usage_mb": body.system_metrics.memory_usage_mb,
            "disk_usage_percent": body.system_metrics.disk_usage_percent,
            "process_count": state.process_count,
            "status": state.reported_status,
        },
    )
    return HeartbeatAck(server_time=now, heartbeat_interval=rt.settings.heartbeat_interval)


def status_message(
    state: SatelliteState, previous_status: SatelliteStatus, at: datetime
) -> dict[str, Any]:
    """The `satellite.status` payload: admin status and connection state after a transition."""
    return {
        "satellite_id": state.id,
        "team_id": state.team_id,
        "status": state.status.value,
        "online": state.online,
        "previous_status": previous_status.value,
        "at": iso(at),
    }


async def _activate(rt: FleetContext, state: SatelliteState, address: str) -> None:
    """`inactive` → `active`, only if the row is still `inactive` (one conditional write).

    Memory already says `active`; when the row was not `inactive` any more (an
    administrator changed it) memory is re-read, and when the write fails it goes
    back to `inactive` so the next heartbeat tries again.
    """
    try:
        changed = await rt.fleet.apply_admin_change(
            state.id, "activated", only_if_status=SatelliteStatus.INACTIVE,
            status=SatelliteStatus.ACTIVE,
        )
        if changed is None:
            await rt.fleet.reload(state.id)
            return
    except DATABASE_ERRORS:
        # Never fail a heartbeat for the database: the next heartbeat activates.
        if state.status is SatelliteStatus.ACTIVE:
            state.status = SatelliteStatus.INACTIVE
        log.warning("activation failed; retrying with the next heartbeat", exc_info=True,
                    extra={"op": "heartbeat.activate", "satellite_id": state.id})
        return
    try:
        await record_audit(
            "satellite.activated",
            actor=satellite_actor(state.id, address),
            object_type="satellite",
            object_id=state.id,
            team_id=state.team_id,
        )
    except DATABASE_ERRORS:
        log.warning("recording an activation failed", exc_info=True,
                    extra={"op": "heartbeat.activate", "satellite_id": state.id})


__all__ = ["HeartbeatAck", "record_heartbeat", "status_message"]
