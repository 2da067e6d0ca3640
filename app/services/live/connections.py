"""Every open live connection (websocket or SSE stream) of this instance, by session.

Logout and password changes (`sessions.ended`) end a session's connections,
membership changes (`memberships.changed`) reload their principal, shutdown ends
them all; after a bus resync the hub revalidates everything from the database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from app.bus import Bus, Channels
from app.models import Session
from app.services.common.waiting import wait_or_stop
from app.services.people.principals import Principal, load_principal

log = logging.getLogger(__name__)

SHUTDOWN = "server shutting down"

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


__all__ = ["SHUTDOWN", "LiveConnection", "LiveHub"]
