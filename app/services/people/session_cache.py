"""Recently authenticated sessions, so busy dashboards skip the session queries."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime

from app.bus import Bus, Channels
from app.services.common.waiting import wait_or_stop
from app.services.people.principals import Principal


class SessionCache:
    """Recently verified sessions → their principal, for a few seconds.

    Saves the three queries of `authenticate_session` on busy dashboards. Ending a
    session or changing a membership evicts at once on every instance (the bus);
    changes made by another process (the CLI) show within `ttl` seconds.
    """

    def __init__(self, ttl: float = 5.0, max_entries: int = 10_000) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._entries: OrderedDict[str, tuple[Principal, datetime, float]] = OrderedDict()

    def get(self, digest: str, now: datetime) -> Principal | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        principal, expires_at, cached_at = entry
        if expires_at <= now or time.monotonic() - cached_at > self._ttl:
            del self._entries[digest]
            return None
        return principal

    def put(self, digest: str, principal: Principal, expires_at: datetime) -> None:
        self._entries[digest] = (principal, expires_at, time.monotonic())
        self._entries.move_to_end(digest)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def evict_sessions(self, digests: Iterable[str]) -> None:
        for digest in digests:
            self._entries.pop(digest, None)

    def evict_user(self, user_id: str) -> None:
        for digest in [key for key, (principal, _, _) in self._entries.items()
                       if principal.user_id == user_id]:
            del self._entries[digest]

    async def follow(self, bus: Bus, stop: asyncio.Event) -> None:
        """Evict on ended sessions and membership changes, from any instance.

        A dropped subscription forgets everything (rather than risk stale rights)
        and subscribes again, until `stop`.
        """
        channels = [Channels.SESSIONS_ENDED, Channels.MEMBERSHIPS_CHANGED]
        while not stop.is_set():
            async for channel, message in bus.subscribe(channels):
                if channel == Channels.SESSIONS_ENDED:
                    self.evict_sessions(str(item) for item in message.get("session_ids") or [])
                elif channel == Channels.MEMBERSHIPS_CHANGED and isinstance(
                    message.get("user_id"), str
                ):
                    self.evict_user(message["user_id"])
            self._entries.clear()
            await wait_or_stop(stop, 0.1)
