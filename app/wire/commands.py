"""Command poll query and command-result body (docs/protocol.md §7, §8)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from app.models.enums import CommandStatus
from app.wire.base import WireModel

MAX_COMMAND_ID_LENGTH = 64
MAX_ERROR_LENGTH = 10 * 1024


class PollQuery(WireModel):
    """`GET …/commands?limit=&last_poll=&wait=` (query strings become numbers)."""

    limit: int = Field(default=10, ge=1, le=50)
    # Sent by the reference client; accepted and ignored.
    last_poll: str | None = None
    # Long-poll extension: hold an empty poll up to this many seconds.
    wait: float = Field(default=0, ge=0, le=30, allow_inf_nan=False)


class CommandResultRequest(WireModel):
    """`POST …/command-result`; the reference client sends `error`, others `error_message`."""

    command_id: str = Field(min_length=1, max_length=MAX_COMMAND_ID_LENGTH)
    status: Literal["acknowledged", "executing", "completed", "failed"]
    result: dict[str, Any] | None = None
    error_message: str | None = Field(default=None, max_length=MAX_ERROR_LENGTH)
    error: str | None = Field(default=None, max_length=MAX_ERROR_LENGTH)

    @property
    def command_status(self) -> CommandStatus:
        return CommandStatus(self.status)

    @property
    def error_text(self) -> str | None:
        return self.error_message if self.error_message is not None else self.error
