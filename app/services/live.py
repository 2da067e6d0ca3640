"""Live updates: bus messages narrowed to what one person may see (design.md §4, §5).

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
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.bus import DROPPED, Bus, Channels, Message
from app.models import SatelliteEvent, Session
from app.models.enums import SatelliteStatus, SatelliteType
from app.services import reads
from app.services.fleet import wait_or_stop
from app.services.principals import Principal, load_principal
from app.services.scope import Kind, can_see

if TYPE_CHECKING:
    from app.services.runtime import Runtime

log = logging.getLogger(__name__)

# Events re-read per query when a stream resumes from a cursor.
RESUME_BATCH = 500
DROPPED_MESSAGE = "Subscriber fell behind; re-read with a query and subscribe again"
SHUTDOWN = "server shutting down"


@dataclass(frozen=True, slots=True)
class Dropped:
    """The final item of a stream whose subscriber fell behind."""

    message: str = DROPPED_MESSAGE


Item = Message | Dropped
# The caller as of now (None once the session or the user is gone).
Viewer = Callable[[], Principal | None]


# ---- the bus, one channel, until the bus or the caller stops ------------------------


async def _channel(rt: Runtime, channel: str, stop: asyncio.Event | None = None,
                   ready: asyncio.Event | None = None) -> AsyncGenerator[Item, None]:
    """Messages of `channel`; a drop yields `Dropped` and ends; `stop` ends quietly.

    `ready` is set once the subscription is registered on the bus, so a caller
    can read the database afterwards without a gap at the seam.
    """
    source = rt.bus.subscribe([channel])
    rt.metrics.subscriptions.inc()
    stopper = asyncio.ensure_future(stop.wait()) if stop is not None else None
    getter: asyncio.Future[tuple[str, Message]] | None = None
    try:
        while True:
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


def _satellite_type(rt: Runtime, satellite_id: str) -> SatelliteType | None:
    state = rt.fleet.get(satellite_id)
    return None if state is None else state.satellite_type


def status_visible(rt: Runtime, principal: Principal, message: Message,
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


async def _visible(rt: Runtime, channel: str, viewer: Viewer, visible: Visible,
                   stop: asyncio.Event | None) -> AsyncGenerator[Item, None]:
    """The messages of `channel` the current caller may see; ends when the caller is gone
    (session ended) and after passing on a drop."""
    async for message in _channel(rt, channel, stop):
        if isinstance(message, Dropped):
            yield message
            return
        principal = viewer()
        if principal is None:
            return
        if visible(principal, message):
            yield message


async def satellite_status(rt: Runtime, viewer: Viewer, *, team_id: str | None = None,
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
    rt: Runtime, viewer: Viewer, selection: EventFilter, *, after: int | None = None,
    stop: asyncio.Event | None = None,
) -> AsyncGenerator[Item, None]:
    """Events the caller may see (team-owned: a member sees its own team's only).

    With `after` (a cursor: an event id), stored events after it come first, read
    from the event log through the scoped reads; live events follow without a
    duplicate or a gap (the bus subscription exists before the log is read).
    """
    ready = asyncio.Event()
    live = _channel(rt, Channels.SATELLITE_EVENTS, stop, ready if after is not None else None)
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


async def command_updates(rt: Runtime, viewer: Viewer, *, satellite_id: str | None = None,
                          stop: asyncio.Event | None = None) -> AsyncGenerator[Item, None]:
    """Command state changes the caller may see (team-owned)."""

    def visible(principal: Principal, message: Message) -> bool:
        if satellite_id is not None and message.get("satellite_id") != satellite_id:
            return False
        return can_see(principal, Kind.TEAM_OWNED, message)

    async for item in _visible(rt, Channels.COMMAND_UPDATED, viewer, visible, stop):
        yield item


async def satellite_metrics(rt: Runtime, viewer: Viewer, satellite_id: str, *,
                            stop: asyncio.Event | None = None) -> AsyncGenerator[Item, None]:
    """Heartbeats of one satellite; of a global satellite, for global admins only
    (the caller is checked before subscribing, `require_metrics_access`)."""

    def visible(principal: Principal, message: Message) -> bool:
        if message.get("satellite_id") != satellite_id:
            return False
        row = {"team_id": message.get("team_id"),
               "satellite_type": _satellite_type(rt, satellite_id)}
        return can_see(principal, Kind.HEARTBEATS, row)

    async for item in _visible(rt, Channels.SATELLITE_HEARTBEAT, viewer, visible, stop):
        yield item


async def require_metrics_access(principal: Principal, satellite_id: str) -> None:
    """NOT_FOUND outside the caller's scope; FORBIDDEN for a global satellite's
    metrics unless a global admin ("aggregated only", design.md §4)."""
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


# ---- live connections by session ---------------------------------------------------


class LiveConnection:
    """One open websocket or SSE stream of one session."""

    def __init__(
        self, principal: Principal,
        on_end: Callable[[str], Awaitable[None]] | None = None,
        on_principal: Callable[[Principal], None] | None = None,
    ) -> None:
        self.principal: Principal | None = principal
        self.ended = asyncio.Event()
        self.reason: str | None = None
        self._on_end = on_end
        self._on_principal = on_principal

    def viewer(self) -> Principal | None:
        """The caller as of now; None once the connection was ended."""
        return None if self.ended.is_set() else self.principal

    def replace_principal(self, principal: Principal) -> None:
        self.principal = principal
        if self._on_principal is not None:
            self._on_principal(principal)

    async def end(self, reason: str) -> None:
        if self.ended.is_set():
            return
        self.reason = reason
        self.ended.set()
        if self._on_end is not None:
            try:
                await self._on_end(reason)
            except Exception:  # a socket already gone: nothing left to close
                log.debug("closing a live connection failed", exc_info=True)


class LiveHub:
    """Every live connection of this instance, kept current by the bus."""

    def __init__(self) -> None:
        self._connections: set[LiveConnection] = set()

    def __len__(self) -> int:
        return len(self._connections)

    def open(self, principal: Principal, **callbacks: Any) -> LiveConnection:
        connection = LiveConnection(principal, **callbacks)
        self._connections.add(connection)
        return connection

    def close(self, connection: LiveConnection) -> None:
        self._connections.discard(connection)

    def of_user(self, user_id: str) -> list[LiveConnection]:
        return [c for c in self._connections
                if c.principal is not None and c.principal.user_id == user_id]

    async def _end(self, connections: Iterable[LiveConnection], reason: str,
                   grace_seconds: float | None = None) -> None:
        tasks = [asyncio.ensure_future(c.end(reason)) for c in connections]
        if tasks:
            await asyncio.wait(tasks, timeout=grace_seconds)

    async def end_sessions(self, session_ids: Iterable[str], reason: str) -> None:
        ended = set(session_ids)
        await self._end([c for c in self._connections
                         if c.principal is not None and c.principal.session_id in ended], reason)

    async def reload_user(self, user_id: str) -> None:
        """New memberships for the user's connections (a removed member stops seeing the team)."""
        for connection in self.of_user(user_id):
            old = connection.principal
            assert old is not None
            principal = await load_principal(user_id, session_id=old.session_id,
                                             address=old.address)
            if principal is None:
                await connection.end("user removed")
            else:
                connection.replace_principal(principal)

    async def end_all(self, grace_seconds: float = 5.0) -> None:
        """Shutdown: every connection ends (sockets get a close frame), bounded in time."""
        await self._end(list(self._connections), SHUTDOWN, grace_seconds)

    async def revalidate(self) -> None:
        """After messages may have been missed: end connections whose session is gone and
        reload everyone's memberships from the database."""
        sessions = {c.principal.session_id for c in self._connections
                    if c.principal is not None and c.principal.session_id is not None}
        alive = set(await Session.filter(id__in=sorted(sessions)).values_list("id", flat=True))
        await self.end_sessions(sessions - alive, "session ended")
        for user_id in {c.principal.user_id for c in self._connections if c.principal}:
            await self.reload_user(user_id)

    async def follow(self, bus: Bus, stop: asyncio.Event) -> None:
        """Apply session ends and membership changes as they are published, until `stop`;
        after a drop or a reconnect (messages may be lost), revalidate and subscribe again."""
        channels = [Channels.SESSIONS_ENDED, Channels.MEMBERSHIPS_CHANGED]
        while not stop.is_set():
            async for channel, message in bus.subscribe(channels):
                try:
                    if channel == Channels.SESSIONS_ENDED:
                        ids = [str(i) for i in message.get("session_ids") or ()]
                        await self.end_sessions(ids,
                                                str(message.get("reason") or "session ended"))
                    elif channel == Channels.MEMBERSHIPS_CHANGED:
                        await self.reload_user(str(message.get("user_id")))
                except Exception:
                    log.exception("applying a session or membership change to live "
                                  "connections failed")
            if stop.is_set():
                return
            try:
                await self.revalidate()
            except Exception:
                log.exception("revalidating live connections after a bus resync failed")
            await wait_or_stop(stop, 0.1)


__all__ = [
    "SHUTDOWN", "Dropped", "EventFilter", "Item", "LiveConnection", "LiveHub", "Viewer",
    "command_updates", "event_message", "event_payload", "require_metrics_access",
    "satellite_events", "satellite_metrics", "satellite_status", "status_payload",
    "status_visible",
]
