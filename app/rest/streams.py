"""Server-sent events (docs/graphql.md §6): the subscription streams over plain HTTP.

- `GET /api/stream/events?satellite_id=&team_id=&types=` — satellite events;
  `id:` is the event log's cursor (the event id), `event:` the event type,
  `data:` the `SatelliteEvent` payload of the subscription. `Last-Event-Id`
  resumes from the event log.
- `GET /api/stream/satellites?team_id=` — status changes (`event:
  satellite.status`, `data:` the `SatelliteStatusChange` payload). Status is not
  in the event log, so these carry no cursor: clients re-read with a query.
- `GET /api/stream/alerts?team_id=` — alert transitions (`event: alert.opened`,
  `alert.resolved`, `alert.acknowledged`, …; `data:` alert id, team, satellite,
  rule, state, transition); re-read the alert with a query for the rest.

Session auth (cookie or Bearer; 401 otherwise), the same scope rules as the
subscriptions (`services.live`). A subscriber that falls behind gets a final
`event: error` and the stream ends; so it does when the session ends or the
server shuts down. Pings every 15 s (aiohttp-sse).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, Callable
from typing import Any

from aiohttp import web
from aiohttp_sse import sse_response

from app.addresses import client_address
from app.bus import Message
from app.errors import Unauthenticated, Unavailable, ValidationError
from app.rest.context import RUNTIME_KEY
from app.rest.graphql import session_token
from app.rest.request_info import note_caller
from app.services.context import Services
from app.services.live import feeds as live
from app.services.people import reads
from app.services.people.principals import Principal
from app.services.people.sessions import authenticate_session

MAX_ID_LENGTH = 64
MAX_TYPES = 50
STATUS_EVENT = "satellite.status"


async def _caller(rt: Services, request: web.Request) -> Principal:
    principal = await authenticate_session(
        rt, session_token(request), address=client_address(request, rt.settings))
    if principal is None:
        raise Unauthenticated("Log in first", code="unauthorized")
    note_caller(request, user_id=principal.user_id)
    return principal


def _id_param(request: web.Request, name: str) -> str | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    if len(value) > MAX_ID_LENGTH:
        raise ValidationError(f"{name} is not a valid id")
    return value


def _types(request: web.Request) -> frozenset[str] | None:
    names = {name.strip() for value in request.query.getall("types", [])
             for name in value.split(",") if name.strip()}
    if len(names) > MAX_TYPES:
        raise ValidationError(f"At most {MAX_TYPES} types")
    return frozenset(names) or None


def _cursor(request: web.Request) -> int | None:
    value = request.headers.get("Last-Event-Id", "").strip()
    if not value:
        return None
    if not value.isdigit() or len(value) > 19:
        raise ValidationError("Last-Event-Id must be an event id")
    return int(value)


def _json(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


Stream = Callable[[live.Viewer, asyncio.Event], AsyncGenerator[live.Item, None]]
Encode = Callable[[Message], tuple[str | None, str, Any]]  # (id, event, payload)


async def _serve(rt: Services, request: web.Request, principal: Principal, stream: Stream,
                 encode: Encode) -> web.StreamResponse:
    """Run one stream until the client leaves, the session ends or the server stops."""
    if rt.shutting_down.is_set():
        raise Unavailable("The server is shutting down")
    stop = asyncio.Event()

    async def end(_reason: str) -> None:
        stop.set()

    hub = rt.live
    connection = hub.open(principal, on_end=end)
    try:
        async with sse_response(request) as response:
            watcher = asyncio.ensure_future(response.wait())  # ends when the client leaves
            watcher.add_done_callback(lambda _: stop.set())
            try:
                async with contextlib.aclosing(stream(connection.viewer, stop)) as items:
                    async for item in items:
                        if isinstance(item, live.Dropped):
                            await response.send(_json({
                                "code": "UNAVAILABLE", "reason": "subscriber_dropped",
                                "message": item.message}), event="error")
                            break
                        event_id, event, payload = encode(item)
                        await response.send(_json(payload), id=event_id, event=event)
            except (ConnectionResetError, TimeoutError):
                pass  # the client left (or stalled and was aborted)
            finally:
                watcher.cancel()
        return response
    finally:
        hub.close(connection)


async def events(request: web.Request) -> web.StreamResponse:
    rt = request.app[RUNTIME_KEY]
    principal = await _caller(rt, request)
    satellite_id = _id_param(request, "satellite_id")
    selection = live.EventFilter(satellite_id, _id_param(request, "team_id"), _types(request))
    after = _cursor(request)
    if satellite_id is not None:
        await reads.require_satellite(principal, satellite_id)

    def stream(viewer: live.Viewer, stop: asyncio.Event) -> AsyncGenerator[live.Item, None]:
        return live.satellite_events(rt, viewer, selection, after=after, stop=stop)

    def encode(message: Message) -> tuple[str | None, str, Any]:
        return str(message["id"]), str(message["type"]), live.event_payload(message)

    return await _serve(rt, request, principal, stream, encode)


async def satellites(request: web.Request) -> web.StreamResponse:
    rt = request.app[RUNTIME_KEY]
    principal = await _caller(rt, request)
    team_id = _id_param(request, "team_id")

    def stream(viewer: live.Viewer, stop: asyncio.Event) -> AsyncGenerator[live.Item, None]:
        return live.satellite_status(rt, viewer, team_id=team_id, stop=stop)

    def encode(message: Message) -> tuple[str | None, str, Any]:
        return None, STATUS_EVENT, live.status_payload(message)

    return await _serve(rt, request, principal, stream, encode)


async def alerts(request: web.Request) -> web.StreamResponse:
    rt = request.app[RUNTIME_KEY]
    principal = await _caller(rt, request)
    team_id = _id_param(request, "team_id")
    if team_id is not None:
        await reads.require_team(principal, team_id)

    def stream(viewer: live.Viewer, stop: asyncio.Event) -> AsyncGenerator[live.Item, None]:
        return live.alert_changes(rt, viewer, team_id=team_id, stop=stop)

    def encode(message: Message) -> tuple[str | None, str, Any]:
        return None, f"alert.{message['transition']}", message

    return await _serve(rt, request, principal, stream, encode)


# ---- lifecycle: live connections follow the bus, and end at shutdown ----------------

# How long open websockets and streams get to close at shutdown (before the timeout for
# in-flight requests starts): part of the bounded stop (docs/operations.md §9).
LIVE_CLOSE_SECONDS = 2.0


async def _follow_sessions(app: web.Application) -> None:
    rt = app[RUNTIME_KEY]
    rt.tasks.start(rt.live.follow(rt.bus, rt.shutting_down), name="live-connections")


async def _end_live_connections(app: web.Application) -> None:
    rt = app[RUNTIME_KEY]
    rt.shutting_down.set()
    await rt.live.end_all(grace_seconds=LIVE_CLOSE_SECONDS)


def add_live_lifecycle(app: web.Application) -> None:
    """Sessions ending and memberships changing reach open websockets and streams;
    shutdown closes them (before aiohttp waits for in-flight requests)."""
    app.on_startup.append(_follow_sessions)
    app.on_shutdown.append(_end_live_connections)


__all__ = ["add_live_lifecycle", "alerts", "events", "satellites"]
