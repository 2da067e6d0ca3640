"""The publish/subscribe interface shared by the in-process and Redis buses.

Messages are hints (JSON-able dicts), published after the transaction commits.
A subscriber that falls behind is dropped: its iterator yields a final
`{"type": "subscriber_dropped"}` message and ends; the client re-reads state
from the database and subscribes again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any, Protocol

Message = dict[str, Any]

DROPPED: Message = {"type": "subscriber_dropped", "reason": "subscriber fell behind"}


class Bus(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, channel: str, message: Message) -> None: ...

    def subscribe(self, channels: Iterable[str]) -> AsyncIterator[tuple[str, Message]]:
        """Yield `(channel, message)` for every message published after the call."""
        ...

    @property
    def connected(self) -> bool:
        """False while a networked bus has lost its connection (messages may be missed)."""
        ...


class Channels:
    """Channel names, in one place."""

    SATELLITE_CHANGED = "satellite.changed"  # {satellite_id, reason}
    # {satellite_id, team_id, status, online, previous_status, at}
    SATELLITE_STATUS = "satellite.status"
    SATELLITE_HEARTBEAT = "satellite.heartbeat"  # {satellite_id, team_id, timestamp, metrics...}
    COMMANDS_PENDING = "commands.pending"  # {satellite_id}
    COMMAND_UPDATED = "command.updated"  # {command_id, satellite_id, team_id, status}
    SATELLITE_EVENTS = "satellite.events"  # {id, satellite_id, team_id, type, timestamp, data}
    KEY_EVICT = "keys.evict"  # {satellite_id}
    SESSIONS_ENDED = "sessions.ended"  # {session_ids, reason}
    MEMBERSHIPS_CHANGED = "memberships.changed"  # {user_id, team_id}
