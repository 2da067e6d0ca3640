"""The engine's passes (a bus message, a tick, a resync after a drop) never interleave
(docs/alerts.md §2): overlapping passes leave the engine knowing exactly the alerts the
rows hold open, so the next heartbeat resolves what was opened."""

from __future__ import annotations

import asyncio

from app.bus import Channels
from app.models import Alert
from app.runtime import Runtime
from app.services.alerts import engine
from tests.fixtures.satellites import SatelliteFactory

ROUNDS = 25


def status(satellite_id: str, *, online: bool) -> dict[str, object]:
    return {"satellite_id": satellite_id, "team_id": None, "status": "active",
            "online": online, "previous_status": "active", "at": "2026-01-01T00:00:00+00:00"}


async def open_in_rows() -> set[str]:
    return {str(key) for key in
            await Alert.filter(open_key__isnull=False).values_list("open_key", flat=True)}


async def test_overlapping_passes_and_resyncs_keep_memory_and_rows_in_step(
    rt: Runtime, make_satellite: SatelliteFactory,
) -> None:
    satellites = [await make_satellite() for _ in range(4)]
    for _ in range(ROUNDS):
        rt.alerts.loaded = False  # as after a drop: the next pass re-reads what is open
        await asyncio.gather(*(engine.handle(rt, Channels.SATELLITE_STATUS,
                                             status(satellite.id, online=False))
                               for satellite in satellites),
                             engine.tick(rt, in_grace=True), engine.tick(rt, in_grace=True))
        assert rt.alerts.open_keys == await open_in_rows()
        assert len(rt.alerts.open_keys) == len(satellites)

        rt.alerts.loaded = False
        await asyncio.gather(*(engine.handle(rt, Channels.SATELLITE_STATUS,
                                             status(satellite.id, online=True))
                               for satellite in satellites), engine.tick(rt, in_grace=True))
        assert await open_in_rows() == set()  # every one resolved by its heartbeat
        assert rt.alerts.open_keys == set()
