"""Live updates: bus messages narrowed to what one person may see (docs/graphql.md §2, §6).

One rule, two transports: GraphQL subscriptions (`app/resolvers/live.py`) and
SSE streams (`app/rest/streams.py`) both read the streams defined here, so the
filters and the scope checks (`scope.can_see`, the one chokepoint) exist once.

- Each stream subscribes to one bus channel and yields the visible messages,
  re-reading the caller's principal for every message (a membership change
  reloads it, see `LiveHub`).
- A subscriber that falls behind gets one `Dropped` item, then the stream ends;
  the client re-reads with a query and subscribes again.
- `LiveHub` keeps every open live connection (websocket or SSE) by session:
  logout and password changes (`sessions.ended`) end them, membership changes
  (`memberships.changed`) reload their principal, shutdown ends them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.bus import DROPPED, Channels, Message
from app.models import SatelliteEvent
from app.models.enums import SatelliteStatus, SatelliteType
from app.services.people import reads
from app.services.people.principals import Principal
from app.services.people.scope import Kind, can_see

if TYPE_CHECKING:
    from app.services.fleet.context import FleetContext

log = logging.getLogger(__name__)

# Events re-read per query when a stream resumes from a cursor.
RESUME_BATCH = 500
DROPPED_MESSAGE = "Subscriber fell behind; re-read with a query and subscribe again"


@dataclass(frozen=True, slots=True)
class Dropped:
    """The final item of a stream whose subscriber fell behind."""

    message: str = DROPPED_MESSAGE


Item = Message | Dropped
# The caller as of now (None once the session or the user is gone).
Viewer = Callable[[], Principal | None]


# ---- the bus, one channel, until the bus or the caller stops ------------------------


async def _channel(rt: FleetContext, channel: str, stop: asyncio.Event | None = None,
                   ready: asyncio.Event | None = None, satellite_id: str | None = None,
                   ) -> AsyncGenerator[Item, None]:
    """Messages of `channel` (of one satellite, when given: routed by the bus, so a
    stream of one satellite does not read the whole fleet's); a drop yields
    `Dropped` and ends; `stop` ends quietly.

    `ready` is set once the subscription is registered on the bus, so a caller
    can read the database afterwards without a gap at the seam.
    """
    source = rt.bus.subscribe([channel], satellite_id=satellite_id)
    rt.metrics.subscriptions.inc()
    stopper = asyncio.ensure_future(stop.wait()) if stop is not None else None
    getter: asyncio.Future[tuple[str, Message]] | None = None
    try:
        while True:
            if stopper is None and (ready is None or ready.is_set()):
                # The common case (a subscription): wait on the bus directly. A task per
                # message per subscriber cost more than the rest of the fan-out.
                try:
                    source_channel, message = await anext(source)
                except StopAsyncIteration:
                    return
                if source_channel != channel and message.get("type") == DROPPED["type"]:
                    yield Dropped()
                    return
                yield message
                continue
            getter = asyncio.ensure_future(anext(source))
            if ready is not None and not ready.is_set():
                await asyncio.sleep(0)  # the getter runs first: the subscription exists
                ready.set()
            if stopper is not None:
                await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    return
            try:
                source_channel, message = await getter
            except StopAsyncIteration:
                return
            finally:
                getter = None
            # The bus's own final message comes on no channel (an event's `type` is data).
            if source_channel != channel and message.get("type") == DROPPED["type"]:
                yield Dropped()
                return
            yield message
    finally:
        # Neither waiter touches the database: cancelling them is safe.
        for waiter in (getter, stopper):
            if waiter is not None and not waiter.done():
                waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await waiter
        await source.aclose()  # type: ignore[attr-defined]
        rt.metrics.subscriptions.dec()


# ---- the four streams -------------------------------------------------------------


def _satellite_type(rt: FleetContext, satellite_id: str) -> SatelliteType | None:
    state = rt.fleet.get(satellite_id)
    return None if state is None else state.satellite_type


def status_visible(rt: FleetContext, principal: Principal, message: Message,
                   team_id: str | None = None) -> bool:
    """A `satellite.status` message for this caller (satellites scope)?"""
    satellite_type = _satellite_type(rt, str(message.get("satellite_id")))
    if satellite_type is None or message.get("status") == SatelliteStatus.DELETED.value:
        return False  # deleted (or unknown to this instance): never shown
    if team_id is not None and message.get("team_id") != team_id:
        return False
    row = {"team_id": message.get("team_id"), "satellite_type": satellite_type}
    return can_see(principal, Kind.SATELLITES, row)


Visible = Callable[[Principal, Message], bool]


async def _visible(rt: FleetContext, channel: str, viewer: Viewer, visible: Visible,
                   stop: asyncio.Event | None, satellite_id: str | None = None,
                   ) -> AsyncGenerator[Item, None]:
    """The messages of `channel` the current caller may see; ends when the caller is gone
    (session ended) and after passing on a drop."""
    async for message in _channel(rt, channel, stop, satellite_id=satellite_id):
        if isinstance(message, Dropped):
            yield message
            return
        principal = viewer()
        if principal is None:
            return
        if visible(principal, message):
            yield message


async def satellite_status(rt: FleetContext, viewer: Viewer, *, team_id: str | None = None,
                           stop: asyncio.Event | None = None) -> AsyncGenerator[Item, None]:
    """Admin status or `online` changes of the satellites the caller may see."""
    async for item in _visible(
        rt, Channels.SATELLITE_STATUS, viewer,
        lambda principal, message: status_visible(rt, principal, message, team_id), stop,
    ):
        yield item


@dataclass(frozen=True, slots=True)
class EventFilter:
    satellite_id: str | None = None
    team_id: str | None = None
    types: frozenset[str] | None = None

    def matches(self, message: Message) -> bool:
        return (
            (self.satellite_id is None or message.get("satellite_id") == self.satellite_id)
            and (self.team_id is None or message.get("team_id") == self.team_id)
            and (self.types is None or message.get("type") in self.types)
        )


def event_message(row: SatelliteEvent) -> Message:
    """A stored event as the `satellite.events` bus message carries it."""
    return {
        "id": str(row.id), "satellite_id": row.satellite_id,  # type: ignore[attr-defined]
        "team_id": row.team_id,  # type: ignore[attr-defined]
        "type": row.event_type, "timestamp": _iso(row.occurred_at), "data": row.data,
    }


async def satellite_events(
    rt: FleetContext, viewer: Viewer, selection: EventFilter, *, after: int | None = None,
    stop: asyncio.Event | None = None,
) -> AsyncGenerator[Item, None]:
    """Events the caller may see (team-owned: a member sees its own team's only).

    With `after` (a cursor: an event id), stored events after it come first, read
    from the event log through the scoped reads; live events follow without a
    duplicate or a gap (the bus subscription exists before the log is read).
    """
    ready = asyncio.Event()
    live = _channel(rt, Channels.SATELLITE_EVENTS, stop, ready if after is not None else None,
                    selection.satellite_id)
    last = after
    first: asyncio.Future[Item | None] | None = None
    try:
        pending: AsyncIterator[Item] = live
        if after is not None:
            first = asyncio.ensure_future(anext(live, None))
            await ready.wait()
            principal = viewer()
            if principal is None:
                return
            async for row in _stored_events(principal, selection, after):
                last = int(row.id)
                yield event_message(row)
            item = await first
            first = None
            if item is None:
                return
            pending = _prepend(item, live)
        async for message in pending:
            if isinstance(message, Dropped):
                yield message
                return
            principal = viewer()
            if principal is None:
                return
            if last is not None and _event_id(message) <= last:
                continue  # already sent from the log
            if selection.matches(message) and can_see(principal, Kind.TEAM_OWNED, message):
                yield message
    finally:
        if first is not None and not first.done():
            first.cancel()  # waits on the bus only
            with contextlib.suppress(asyncio.CancelledError):
                await first
        await live.aclose()


async def _prepend(item: Item, rest: AsyncIterator[Item]) -> AsyncGenerator[Item, None]:
    yield item
    async for following in rest:
        yield following


async def _stored_events(principal: Principal, selection: EventFilter, after: int
                         ) -> AsyncIterator[SatelliteEvent]:
    query = reads.events(principal, satellite_id=selection.satellite_id)
    if selection.team_id is not None:
        query = query.filter(team_id=selection.team_id)
    if selection.types is not None:
        query = query.filter(event_type__in=sorted(selection.types))
    cursor = after
    while True:
        rows = await query.filter(id__gt=cursor).order_by("id").limit(RESUME_BATCH)
        for row in rows:
            yield row
        if len(rows) < RESUME_BATCH:
            return
        cursor = int(rows[-1].id)


def _event_id(message: Message) -> int:
    try:
        return int(message.get("id", 0))
    except (TypeError, ValueError):
        return 0


async def command_updates(rt: FleetContext, viewer: Viewer, *, satellite_id: str | None = None,
                          stop: asyncio.Event | None = None) -> AsyncGenerator[Item, None]:
    """Command state changes the caller may see (team-owned)."""

    def visible(principal: Principal, message: Message) -> bool:
        if satellite_id is not None and message.get("satellite_id") != satellite_id:
            return False
        return can_see(principal, Kind.TEAM_OWNED, message)

    async for item in _visible(rt, Channels.COMMAND_UPDATED, viewer, visible, stop,
                               satellite_id):
        yield item


async def satellite_metrics(rt: FleetContext, viewer: Viewer, satellite_id: str, *,
                            stop: asyncio.Event | None = None) -> AsyncGenerator[Item, None]:
    """Heartbeats of one satellite; of a global satellite, for global admins only
    (the caller is checked before subscribing, `require_metrics_access`)."""

    def visible(principal: Principal, message: Message) -> bool:
        if message.get("satellite_id") != satellite_id:
            return False
        row = {"team_id": message.get("team_id"),
               "satellite_type": _satellite_type(rt, satellite_id)}
        return can_see(principal, Kind.HEARTBEATS, row)

    async for item in _visible(rt, Channels.SATELLITE_HEARTBEAT, viewer, visible, stop,
                               satellite_id):
        yield item


async def alert_changes(rt: FleetContext, viewer: Viewer, *, team_id: str | None = None,
                        stop: asyncio.Event | None = None) -> AsyncGenerator[Item, None]:
    """Alert transitions the caller may see: a team's for its members, those of no team
    (a global satellite's) for global admins (docs/alerts.md §3)."""

    def visible(principal: Principal, message: Message) -> bool:
        if team_id is not None and message.get("team_id") != team_id:
            return False
        return can_see(principal, Kind.TEAM_OWNED, message)

    async for item in _visible(rt, Channels.ALERT_CHANGED, viewer, visible, stop):
        yield item


async def require_metrics_access(principal: Principal, satellite_id: str) -> None:
    """NOT_FOUND outside the caller's scope; FORBIDDEN for a global satellite's
    metrics unless a global admin ("aggregated only", docs/graphql.md §2)."""
    from app.errors import Forbidden

    row = await reads.require_satellite(principal, satellite_id)
    if row.satellite_type is SatelliteType.GLOBAL and not principal.is_global_admin:
        raise Forbidden("Metrics of global satellites are for administrators (aggregated only)",
                        code="aggregated_only")


# ---- payloads (the JSON of the subscription payloads, for SSE) -------------------


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    text: str = value.isoformat()
    return text.replace("+00:00", "Z") if text.endswith("+00:00") else text


def graphql_status(value: Any) -> str:
    """A stored status as the GraphQL enum spells it (upper case)."""
    return SatelliteStatus(value).value.upper()


def status_payload(message: Message) -> dict[str, Any]:
    """`SatelliteStatusChange { satellite { id status online } online previousStatus at }`."""
    return {
        "satellite": {"id": message["satellite_id"], "status": graphql_status(message["status"]),
                      "online": bool(message["online"])},
        "online": bool(message["online"]),
        "previousStatus": graphql_status(message["previous_status"]),
        "at": message["at"],
    }


def event_payload(message: Message) -> dict[str, Any]:
    """`SatelliteEvent { id type timestamp satelliteId teamId data }`."""
    return {
        "id": str(message["id"]), "type": message["type"], "timestamp": message["timestamp"],
        "satelliteId": message["satellite_id"], "teamId": message.get("team_id"),
        "data": message.get("data"),
    }


__all__ = [
    "Dropped", "EventFilter", "Item", "Viewer",
    "command_updates", "event_message", "event_payload", "require_metrics_access",
    "satellite_events", "satellite_metrics", "satellite_status", "status_payload",
    "status_visible",
]
