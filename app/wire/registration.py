"""`POST /api/satellites/register` body (protocol.md §4). Type and team come from the token."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import Field, StringConstraints, field_validator

from app.services.satellites import (
    DEFAULT_CAPABILITIES,
    NAME_MAX_LENGTH,
    NAME_MIN_LENGTH,
    NAME_PATTERN,
)
from app.wire.base import WireModel

MAX_CAPABILITIES = 32
MAX_CAPABILITY_LENGTH = 64
MAX_URL_LENGTH = 2048
MAX_SYSTEM_INFO_BYTES = 16 * 1024

SatelliteName = Annotated[
    str,
    StringConstraints(min_length=NAME_MIN_LENGTH, max_length=NAME_MAX_LENGTH, pattern=NAME_PATTERN),
]
Capability = Annotated[str, StringConstraints(min_length=1, max_length=MAX_CAPABILITY_LENGTH)]


class RegistrationRequest(WireModel):
    name: SatelliteName
    capabilities: list[Capability] = Field(
        default_factory=lambda: list(DEFAULT_CAPABILITIES), max_length=MAX_CAPABILITIES
    )
    satellite_url: str | None = Field(default=None, max_length=MAX_URL_LENGTH)
    system_info: dict[str, Any] | None = None

    @field_validator("system_info")
    @classmethod
    def _bounded_system_info(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(json.dumps(value)) > MAX_SYSTEM_INFO_BYTES:
            raise ValueError(f"system_info is larger than {MAX_SYSTEM_INFO_BYTES} bytes")
        return value
