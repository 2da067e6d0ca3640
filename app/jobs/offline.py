"""Offline detection (docs/protocol.md §6, §12 defect 10; docs/operations.md §2).

A satellite whose last heartbeat is older than `offline_threshold` is marked
offline: in memory at once, in the database with one UPDATE per run, and on
`satellite.status` for subscribers. Its next heartbeat brings it back online
(`record_heartbeat`). After a start, nothing is marked offline until one full
threshold has passed, so a restart does not flip the whole fleet.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from tortoise.expressions import Q

from app.bus import Channels
from app.models import Satellite
from app.services.context import Services
from app.services.fleet.heartbeats import status_message
from app.services.fleet.state import SatelliteState

log = logging.getLogger(__name__)


def in_start_up_grace(rt: Services) -> bool:
    return rt.clock.monotonic() - rt.started_monotonic < rt.settings.offline_threshold


def _is_stale(state: SatelliteState, cutoff: datetime) -> bool:
    return state.online and (state.last_heartbeat_at is None or state.last_heartbeat_at < cutoff)


async def run_once(rt: Services) -> None:
    """Mark satellites without a heartbeat for `offline_threshold` seconds offline."""
    if in_start_up_grace(rt):
        return
    now = rt.clock.now()
    cutoff = now - timedelta(seconds=rt.settings.offline_threshold)
    stale = [state for state in rt.fleet.all() if _is_stale(state, cutoff)]
    for state in stale:
        state.online = False  # before any await: a heartbeat arriving now flips it back
    if stale:
        await _persist(rt, stale, cutoff)
    for state in stale:
        if not state.online:  # a heartbeat may have arrived meanwhile; it published itself
            await rt.bus.publish(Channels.SATELLITE_STATUS,
                                 status_message(state, state.status, now))
    rt.metrics.online_satellites.set(sum(1 for state in rt.fleet.all() if state.online))
    if stale:
        log.info("satellites went offline",
                 extra={"op": "jobs.offline", "satellites": [state.id for state in stale]})


async def _persist(rt: Services, stale: list[SatelliteState], cutoff: datetime) -> None:
    """One conditional UPDATE; rows whose stored heartbeat is recent stay online.

    A row can be more recent than this instance's memory when another instance
    received the heartbeat: such satellites are put back online here.
    """
    ids = [state.id for state in stale]
    not_recent = Q(last_heartbeat_at__isnull=True) | Q(last_heartbeat_at__lt=cutoff)
    changed = await Satellite.filter(not_recent, id__in=ids, online=True).update(online=False)
    if changed == len(ids):
        return
    recent = await Satellite.filter(id__in=ids, last_heartbeat_at__gte=cutoff).values_list(
        "id", "last_heartbeat_at"
    )
    for satellite_id, last_heartbeat_at in recent:
        state = rt.fleet.get(str(satellite_id))
        if state is not None and not state.online:
            state.online = True
            if state.last_heartbeat_at is None or state.last_heartbeat_at < last_heartbeat_at:
                state.last_heartbeat_at = last_heartbeat_at
