"""The records event ingestion passes between its steps, and what it answers.

An event's key is unique per satellite (docs/protocol.md §10, "Client ids and
replays"): the client's `id` when it sent one, otherwise a server-made
`~<32 hex>.<index>` key (`SERVER_KEY_PREFIX`, one random nonce per batch, the
event's index).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SERVER_KEY_PREFIX = "~"


class Invalid(Exception):
    """One event refused; the message is its failure entry."""


@dataclass(frozen=True, slots=True)
class EventFailure:
    index: int
    type: str | None
    error: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "type": self.type, "error": self.error}


@dataclass(frozen=True, slots=True)
class IngestResult:
    event_ids: list[str]
    failures: list[EventFailure]

    @property
    def processed(self) -> int:
        return len(self.event_ids)


@dataclass(frozen=True, slots=True)
class Installation:
    id: str
    team_id: str
    pinned_satellite_id: str | None
    server_id: str


@dataclass(slots=True)
class Event:
    index: int
    type: str
    occurred_at: datetime
    data: dict[str, Any]
    key: str
    client_id: str | None
    installation: Installation | None = None
    process_id: str | None = None  # the satellite's process row it names, if any
    team_id: str | None = None
    id: int | None = None
    new: bool = False
    # Built by `rows.prepare_rows` before the write queues: the event's row, and
    # its bulk effect rows (`rows.USAGE_COLUMNS`, `rows.SERVER_LOG_COLUMNS`),
    # applied if it is new.
    row: tuple[Any, ...] = ()
    usage_row: tuple[Any, ...] | None = None
    log_rows: list[tuple[Any, ...]] = field(default_factory=list)
