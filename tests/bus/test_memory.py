"""The in-process bus: per-satellite subscriptions are routed, not filtered."""

from __future__ import annotations

import asyncio

from app.bus.memory import InProcessBus

CHANNEL = "satellite.heartbeat"


async def test_a_satellite_subscriber_gets_its_satellite_only_and_survives_a_busy_fleet(
) -> None:
    bus = InProcessBus(queue_size=100)
    mine = bus.subscribe([CHANNEL], satellite_id="sat-1")
    everything = bus.subscribe([CHANNEL])
    first_mine = asyncio.ensure_future(anext(mine))
    first_all = asyncio.ensure_future(anext(everything))
    await asyncio.sleep(0)
    assert bus.subscriber_count() == 2

    for index in range(1_000):  # the rest of the fleet: ten times the queue
        bus.publish_nowait(CHANNEL, {"satellite_id": f"other-{index}"})
    bus.publish_nowait(CHANNEL, {"satellite_id": "sat-1", "cpu": 42})

    assert await asyncio.wait_for(first_mine, 5) == (CHANNEL, {"satellite_id": "sat-1",
                                                                "cpu": 42})
    assert (await asyncio.wait_for(first_all, 5))[1]["satellite_id"].startswith("other-")
    dropped = [message async for _, message in everything]  # fell behind: dropped
    assert dropped[-1]["type"] == "subscriber_dropped"

    await mine.aclose()  # type: ignore[attr-defined]
    await everything.aclose()  # type: ignore[attr-defined]
    assert bus.subscriber_count() == 0
