"""Heartbeats (protocol.md §6). SKELETON: the heartbeat helper fills this in."""

from __future__ import annotations

from app.config import Settings


class HeartbeatRecorder:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def run(self) -> None:
        """The flusher loop (persist buffered heartbeats every flush interval)."""
        raise NotImplementedError

    async def flush(self) -> None:
        """Persist everything buffered now (also called at shutdown)."""
        return
