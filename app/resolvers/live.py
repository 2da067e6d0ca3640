"""Subscriptions: the scoped live streams of `services.live` → GraphQL types.

Each event gets fresh DataLoaders (the websocket context lives as long as the
socket), and the caller is re-read for every event (`context.principal`, which
the view replaces when the person's memberships change). A subscriber that
falls behind gets a final error (`UNAVAILABLE`, reason `subscriber_dropped`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

import strawberry

from app.bus import Message
from app.errors import Unavailable
from app.models import SatelliteCommand
from app.schema.context import Info, principal_of
from app.schema.enums import SatelliteStatus
from app.schema.fanout import shared_payload, shared_payload_for
from app.schema.types.alerts import Alert, AlertChange
from app.schema.types.commands import Command
from app.schema.types.live import SatelliteStatusChange
from app.schema.types.satellites import Heartbeat, Satellite, SatelliteEvent
from app.services.live import feeds as live
from app.services.people import reads
from app.services.people.principals import Principal

T = TypeVar("T")


def _viewer(info: Info) -> live.Viewer:
    context = info.context
    return lambda: context.principal


def _for_event(info: Info) -> Principal | None:
    """Start one event: new loaders (nothing cached from the previous one), the current caller."""
    info.context.renew_loaders()
    return info.context.principal


async def _messages(items: AsyncGenerator[live.Item, None]) -> AsyncGenerator[Message, None]:
    """The stream's messages; a drop becomes the final error. The bus subscription is
    released in `finally` (strawberry cancels the operation when the client leaves)."""
    try:
        async for item in items:
            if isinstance(item, live.Dropped):
                raise Unavailable(item.message, code="subscriber_dropped")
            yield item
    finally:
        await items.aclose()


async def _read_for_viewer(
    info: Info, stream: AsyncGenerator[live.Item, None],
    read: Callable[[Principal, Message], Awaitable[T | None]],
) -> AsyncGenerator[T, None]:
    """Each message as `read` makes it for the current caller (with the caller's rights:
    once per message and viewer scope, `shared_payload_for`); messages it finds nothing
    for are skipped."""
    async with aclosing(_messages(stream)) as messages:
        async for message in messages:
            principal = _for_event(info)
            if principal is None:
                return
            payload = await shared_payload_for(message, principal,
                                               partial(read, principal, message))
            if payload is not None:
                yield payload


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def satellite_status_changed(
    info: Info, team_id: strawberry.ID | None = None
) -> AsyncGenerator[SatelliteStatusChange, None]:
    principal_of(info)
    stream = live.satellite_status(info.context.rt, _viewer(info), team_id=team_id)
    async with aclosing(_read_for_viewer(info, stream, partial(_status_change, info))) as payloads:
        async for change in payloads:
            yield change


async def _status_change(info: Info, principal: Principal,
                         message: Message) -> SatelliteStatusChange | None:
    row = await reads.satellite(principal, str(message["satellite_id"]))
    if row is None:
        return None
    satellite = Satellite.of(row, info)
    # The state of this change, not whatever came after it.
    satellite.status = SatelliteStatus(message["status"])
    satellite.online = bool(message["online"])
    return SatelliteStatusChange(
        satellite=satellite, online=bool(message["online"]),
        previous_status=SatelliteStatus(message["previous_status"]), at=_when(message["at"]),
    )


def _event(message: Message) -> SatelliteEvent:
    data: Any = message.get("data")
    return SatelliteEvent(
        id=strawberry.ID(str(message["id"])), type=str(message["type"]),
        timestamp=_when(message["timestamp"]),
        satellite_id=strawberry.ID(str(message["satellite_id"])),
        team_id=message.get("team_id"), installation_id=message.get("installation_id"),
        data=data,
    )


async def satellite_events(
    info: Info, satellite_id: strawberry.ID | None = None, team_id: strawberry.ID | None = None,
    types: list[str] | None = None,
) -> AsyncGenerator[SatelliteEvent, None]:
    principal = principal_of(info)
    if satellite_id is not None:
        await reads.require_satellite(principal, satellite_id)
    selection = live.EventFilter(satellite_id, team_id,
                                 None if types is None else frozenset(types))
    stream = live.satellite_events(info.context.rt, _viewer(info), selection)
    async with aclosing(_messages(stream)) as messages:
        async for message in messages:
            if _for_event(info) is None:
                return
            yield shared_payload(message, _event)


async def command_updated(
    info: Info, satellite_id: strawberry.ID | None = None
) -> AsyncGenerator[Command, None]:
    principal = principal_of(info)
    if satellite_id is not None:
        await reads.require_satellite(principal, satellite_id)
    stream = live.command_updates(info.context.rt, _viewer(info), satellite_id=satellite_id)
    async with aclosing(_read_for_viewer(info, stream, _command)) as payloads:
        async for command in payloads:
            yield command


async def _command(principal: Principal, message: Message) -> Command | None:
    row: SatelliteCommand | None = await reads.command(principal, str(message["command_id"]))
    return None if row is None else Command.of(row)


async def satellite_metrics(
    info: Info, satellite_id: strawberry.ID
) -> AsyncGenerator[Heartbeat, None]:
    await live.require_metrics_access(principal_of(info), satellite_id)
    stream = live.satellite_metrics(info.context.rt, _viewer(info), satellite_id)
    async with aclosing(_messages(stream)) as messages:
        async for message in messages:
            if _for_event(info) is None:
                return
            yield shared_payload(message, lambda m: _heartbeat(satellite_id, m))


async def alert_changed(
    info: Info, team_id: strawberry.ID | None = None
) -> AsyncGenerator[AlertChange, None]:
    principal = principal_of(info)
    if team_id is not None:
        await reads.require_team(principal, team_id)
    stream = live.alert_changes(info.context.rt, _viewer(info), team_id=team_id)
    async with aclosing(_read_for_viewer(info, stream, _alert_change)) as payloads:
        async for change in payloads:
            yield change


async def _alert_change(principal: Principal, message: Message) -> AlertChange | None:
    row = await reads.alert(principal, str(message["alert_id"]))
    if row is None:
        return None
    return AlertChange(transition=str(message["transition"]), alert=Alert.of(row))


def _heartbeat(satellite_id: str, message: Message) -> Heartbeat:
    return Heartbeat(
        satellite_id=strawberry.ID(satellite_id), timestamp=_when(message["timestamp"]),
        cpu_usage_percent=float(message.get("cpu_usage_percent") or 0.0),
        memory_usage_mb=float(message.get("memory_usage_mb") or 0.0),
        disk_usage_percent=message.get("disk_usage_percent"),
        uptime_seconds=message.get("uptime_seconds"),
        process_count=int(message.get("process_count") or 0),
    )


__all__ = ["alert_changed", "command_updated", "satellite_events", "satellite_metrics",
           "satellite_status_changed"]
