"""The publish/subscribe interface shared by the in-process and Redis buses.

Messages are hints (JSON-able dicts), published after the transaction commits.
A subscriber that falls behind is dropped: its iterator yields a final
`{"type": "subscriber_dropped"}` message and ends; the client re-reads state
from the database and subscribes again. A networked bus ends every subscription
the same way (`RESYNC`) when it (re)connects, since messages published while it
was disconnected are lost.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any, Protocol

Message = dict[str, Any]

DROPPED: Message = {"type": "subscriber_dropped", "reason": "subscriber fell behind"}
# The same ending for every subscription when a networked bus (re)connects: messages
# published while it was disconnected are lost, so subscribers re-read and subscribe again.
RESYNC: Message = {
    "type": "subscriber_dropped",
    "reason": "bus reconnected; messages may have been missed",
}


class Bus(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, channel: str, message: Message) -> None: ...

    async def publish_many(self, channel: str, messages: Sequence[Message]) -> None:
        """Publish each message, in order; a networked bus sends them as one."""
        ...

    def subscribe(self, channels: Iterable[str], *, satellite_id: str | None = None
                  ) -> AsyncIterator[tuple[str, Message]]:
        """Yield `(channel, message)` for every message published after the call; with
        `satellite_id`, only messages whose `satellite_id` is that one (routed by key:
        a per-satellite subscriber costs nothing for the rest of the fleet)."""
        ...

    @property
    def connected(self) -> bool:
        """False while a networked bus has lost its connection (messages may be missed)."""
        ...

    def subscriber_count(self) -> int:
        """Subscriptions open in this process (metrics, tests)."""
        ...

    @property
    def epoch(self) -> int:
        """Goes up each time a networked bus (re)connects (always 0 in-process).

        State read from the database after the epoch was `n` (and while connected)
        is current as far as the bus is concerned until the epoch changes.
        """
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
    AUTH_FAILURE_BURST = "auth.failure_burst"  # {address, reason}
    ALERT_CHANGED = "alert.changed"  # {alert_id, team_id, satellite_id, rule, state, transition}
