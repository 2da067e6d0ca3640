"""Operator actions on satellites: disable, enable, maintenance, delete, rotate-key, list."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from app.bus import Channels
from app.errors import NotFound, ValidationError
from app.models import AuditEntry, Satellite
from app.models.enums import SatelliteStatus, SatelliteType
from app.runtime import Runtime
from app.services.common.actors import CLI_ACTOR
from app.services.common.clock import utcnow
from app.services.satellites.admin import (
    create_satellite,
    delete_satellite,
    get_satellite,
    list_satellites,
    rotate_satellite_key,
    set_satellite_status,
)
from tests.fixtures.satellites import SatelliteFactory

UNKNOWN_ID = "0123456789abcdef0123456789abcdef"


async def poll_status(http: aiohttp.ClientSession, satellite_id: str, key: str) -> int:
    async with http.get(
        f"/api/satellites/{satellite_id}/commands", headers={"Authorization": f"Bearer {key}"}
    ) as response:
        return response.status


class StatusListener:
    """Collects `satellite.status` messages published on the bus."""

    def __init__(self, rt: Runtime) -> None:
        self.messages: list[dict[str, Any]] = []
        self._ready = asyncio.Event()
        self._task = asyncio.create_task(self._listen(rt))

    async def _listen(self, rt: Runtime) -> None:
        stream = rt.bus.subscribe([Channels.SATELLITE_STATUS])
        iterator = stream.__aiter__()
        waiting = asyncio.ensure_future(iterator.__anext__())
        self._ready.set()
        while True:
            _, message = await waiting
            self.messages.append(message)
            waiting = asyncio.ensure_future(iterator.__anext__())

    async def started(self) -> StatusListener:
        await self._ready.wait()
        await asyncio.sleep(0)
        return self

    async def wait_for(self, count: int) -> list[dict[str, Any]]:
        for _ in range(100):
            if len(self.messages) >= count:
                break
            await asyncio.sleep(0.01)
        return self.messages

    def stop(self) -> None:
        self._task.cancel()


async def test_disable_refuses_the_key_at_once_and_enable_restores_it(
    http: aiohttp.ClientSession, rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite()
    assert await poll_status(http, satellite.id, satellite.api_key) == 200
    state = await set_satellite_status(rt, satellite.id, SatelliteStatus.DISABLED, actor=CLI_ACTOR)
    assert state.status is SatelliteStatus.DISABLED
    assert await poll_status(http, satellite.id, satellite.api_key) == 401
    await set_satellite_status(rt, satellite.id, SatelliteStatus.ACTIVE, actor=CLI_ACTOR)
    assert await poll_status(http, satellite.id, satellite.api_key) == 200
    entries = await AuditEntry.filter(action="satellite.status_changed").order_by("id")
    assert [(e.details["previous_status"], e.details["status"]) for e in entries][-2:] == [
        ("active", "disabled"),
        ("disabled", "inactive"),
    ]


async def test_enable_activates_only_a_satellite_that_has_heartbeated(
    rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    never = await make_satellite(active=False)
    seen = await make_satellite()
    await Satellite.filter(id=seen.id).update(last_heartbeat_at=utcnow())
    for satellite in (never, seen):
        await set_satellite_status(rt, satellite.id, SatelliteStatus.DISABLED, actor=CLI_ACTOR)
    never_state = await set_satellite_status(rt, never.id, SatelliteStatus.ACTIVE, actor=CLI_ACTOR)
    seen_state = await set_satellite_status(rt, seen.id, SatelliteStatus.ACTIVE, actor=CLI_ACTOR)
    assert never_state.status is SatelliteStatus.INACTIVE
    assert seen_state.status is SatelliteStatus.ACTIVE
    assert (await Satellite.get(id=seen.id)).status is SatelliteStatus.ACTIVE


async def test_status_changes_are_published_for_dashboards(
    rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite()
    listener = await StatusListener(rt).started()
    try:
        await set_satellite_status(rt, satellite.id, SatelliteStatus.MAINTENANCE, actor=CLI_ACTOR)
        messages = await listener.wait_for(1)
    finally:
        listener.stop()
    assert messages[0]["satellite_id"] == satellite.id
    assert messages[0]["status"] == "maintenance"
    assert messages[0]["previous_status"] == "active"
    assert messages[0]["team_id"] is None
    assert isinstance(messages[0]["online"], bool)
    assert messages[0]["at"].endswith("Z")


async def test_setting_the_current_status_changes_nothing(
    rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite()
    revision = (await Satellite.get(id=satellite.id)).revision
    await set_satellite_status(rt, satellite.id, SatelliteStatus.ACTIVE, actor=CLI_ACTOR)
    assert (await Satellite.get(id=satellite.id)).revision == revision
    assert not await AuditEntry.filter(action="satellite.status_changed").exists()


async def test_status_actions_on_unknown_or_deleted_ids_are_not_found(
    rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite()
    await delete_satellite(rt, satellite.id, actor=CLI_ACTOR)
    for satellite_id in (UNKNOWN_ID, satellite.id):
        with pytest.raises(NotFound):
            await set_satellite_status(rt, satellite_id, SatelliteStatus.DISABLED, actor=CLI_ACTOR)
        with pytest.raises(NotFound):
            await rotate_satellite_key(rt, satellite_id, actor=CLI_ACTOR)
        with pytest.raises(NotFound):
            await delete_satellite(rt, satellite_id, actor=CLI_ACTOR)
        with pytest.raises(NotFound):
            await get_satellite(satellite_id)


async def test_deleted_is_not_a_status_one_can_set(
    rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite()
    with pytest.raises(ValidationError):
        await set_satellite_status(rt, satellite.id, SatelliteStatus.DELETED, actor=CLI_ACTOR)


async def test_delete_revokes_the_key_frees_the_name_and_keeps_the_row(
    http: aiohttp.ClientSession, rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite(name="doomed-satellite")
    assert await poll_status(http, satellite.id, satellite.api_key) == 200
    await delete_satellite(rt, satellite.id, actor=CLI_ACTOR)
    assert await poll_status(http, satellite.id, satellite.api_key) == 401
    row = await Satellite.get(id=satellite.id)
    assert row.status is SatelliteStatus.DELETED
    assert row.api_key_id is None
    assert row.api_key_hash is None
    assert row.name == f"deleted-{satellite.id}"
    assert row.deleted_at is not None
    assert rt.fleet.get(satellite.id) is None
    entry = await AuditEntry.get(action="satellite.deleted", object_id=satellite.id)
    assert entry.details["name"] == "doomed-satellite"
    reborn, _ = await create_satellite(
        rt, name="doomed-satellite", satellite_type=SatelliteType.GLOBAL, team_id=None
    )
    assert reborn.id != satellite.id


async def test_rotate_key_returns_a_new_key_and_refuses_the_old_one_at_once(
    http: aiohttp.ClientSession, rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite()
    assert await poll_status(http, satellite.id, satellite.api_key) == 200  # cached
    new_key = await rotate_satellite_key(rt, satellite.id, actor=CLI_ACTOR)
    assert new_key != satellite.api_key
    assert new_key.startswith("deploystack_satellite_api_global_")
    assert await poll_status(http, satellite.id, satellite.api_key) == 401
    assert await poll_status(http, satellite.id, new_key) == 200
    entry = await AuditEntry.get(action="satellite.key_rotated", object_id=satellite.id)
    assert new_key not in str(entry.details)


async def test_rotating_a_disabled_satellites_key_keeps_it_disabled(
    http: aiohttp.ClientSession, rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite()
    await set_satellite_status(rt, satellite.id, SatelliteStatus.DISABLED, actor=CLI_ACTOR)
    new_key = await rotate_satellite_key(rt, satellite.id, actor=CLI_ACTOR)
    assert (await get_satellite(satellite.id)).status is SatelliteStatus.DISABLED
    assert await poll_status(http, satellite.id, new_key) == 401


async def test_list_leaves_out_deleted_and_orders_by_name(
    rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    charlie = await make_satellite(name="charlie-satellite")
    await make_satellite(name="alpha-satellite")
    await make_satellite(name="bravo-satellite")
    await delete_satellite(rt, charlie.id, actor=CLI_ACTOR)
    assert [row.name for row in await list_satellites()] == ["alpha-satellite", "bravo-satellite"]


async def test_create_with_a_taken_name_is_a_conflict(
    rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    from app.errors import Conflict

    await make_satellite(name="unique-satellite")
    with pytest.raises(Conflict) as caught:
        await create_satellite(
            rt, name="unique-satellite", satellite_type=SatelliteType.GLOBAL, team_id=None
        )
    assert caught.value.code == "satellite_name_taken"


async def test_deleting_a_satellite_cancels_its_open_commands(
    rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    from app.models import SatelliteCommand
    from app.models.enums import CommandStatus, CommandType
    from app.services.commands.queue import enqueue_command

    satellite = await make_satellite()
    command = await enqueue_command(
        rt, satellite_id=satellite.id, command_type=CommandType.RESTART, actor=CLI_ACTOR
    )
    await delete_satellite(rt, satellite.id, actor=CLI_ACTOR)
    row = await SatelliteCommand.get(id=command.id)
    assert row.status is CommandStatus.CANCELLED
    assert row.error_message == "satellite deleted"
