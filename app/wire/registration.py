"""`POST /api/satellites/register` body (docs/protocol.md §4). Type and team come from the token."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import Field, StringConstraints, field_validator, model_validator

from app.wire.base import WireModel
from app.wire.heartbeat import clean_text

# Satellite names: what registration accepts and every later rename must keep.
NAME_MIN_LENGTH = 10
NAME_MAX_LENGTH = 32
NAME_PATTERN = r"^[a-z0-9_-]+$"
DEFAULT_CAPABILITIES = ("stdio", "http", "sse")
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

    @model_validator(mode="before")
    @classmethod
    def _storable_text(cls, data: Any) -> Any:
        """NUL and unpaired surrogates cannot be stored (PostgreSQL): replaced, not refused."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for name in ("satellite_url", "capabilities", "system_info"):
            if name in data:
                data[name] = _cleaned(data[name])
        return data

    @field_validator("system_info")
    @classmethod
    def _bounded_system_info(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(json.dumps(value)) > MAX_SYSTEM_INFO_BYTES:
            raise ValueError(f"system_info is larger than {MAX_SYSTEM_INFO_BYTES} bytes")
        return value


def _cleaned(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [_cleaned(item) for item in value]
    if isinstance(value, dict):
        return {_cleaned(key): _cleaned(item) for key, item in value.items()}
    return value
