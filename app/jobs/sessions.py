"""Idle session expiry: sessions past `expires_at` end like a logout (docs/graphql.md §1)."""

from __future__ import annotations

import logging

from app.services.context import Services
from app.services.people.sessions import EXPIRED_SESSIONS_PER_RUN, end_expired_sessions

log = logging.getLogger(__name__)


async def run_once(rt: Services) -> None:
    while True:  # a backlog (say, after downtime) is worked off in bounded batches
        ended = await end_expired_sessions(rt)
        if ended:
            log.info("expired sessions ended", extra={"op": "sessions.expire", "count": ended})
        if ended < EXPIRED_SESSIONS_PER_RUN or rt.shutting_down.is_set():
            return
