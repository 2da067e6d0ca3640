"""Pydantic models of the satellite REST responses (docs/protocol.md §1–§10).

They describe what the handlers send, for the OpenAPI document
(`app/rest/openapi.py`); the fuzz tests check real responses against them.
Optional keys that a handler leaves out (e.g. `details`, `duplicate`) have a
default, so they are not `required` in the schema.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.models.enums import CommandPriority, CommandStatus, CommandType, SatelliteType


class ResponseModel(BaseModel):
    model_config = ConfigDict(frozen=True)


class ErrorDetail(ResponseModel):
    field: str
    message: str


class ErrorResponse(ResponseModel):
    """Every error body (docs/protocol.md §1); `error` is the code the client reads."""

    success: Literal[False]
    error: str = Field(description="Stable code, e.g. `validation_failed`, `unauthorized`, "
                                   "`rate limit exceeded`, or a registration code (§3)")
    message: str
    details: list[ErrorDetail] | None = Field(
        default=None, description="Per-field problems; validation errors only"
    )
    request_id: str = Field(description="The request's id, as in the `X-Request-Id` response "
                                        "header and the server's logs")


class HealthResponse(ResponseModel):
    status: Literal["ok"]
    version: str = Field(description="The server's version")


class HealthUnavailableResponse(ErrorResponse):
    status: Literal["unavailable"]
    version: str = Field(description="The server's version")


class RegistrationStatusResponse(ResponseModel):
    registration_method: Literal["token_based"]
    token_required: bool
    supported_prefixes: list[str]


class RegisteredSatellite(ResponseModel):
    id: str
    name: str
    satellite_type: SatelliteType
    team_id: str | None
    status: str = Field(description="Administrative status: `inactive` until the first "
                                    "heartbeat, or a kept `maintenance`")
    api_key: str = Field(description="Shown once, here, and never again")


class RegistrationResponse(ResponseModel):
    success: Literal[True]
    satellite: RegisteredSatellite
    message: str


class HeartbeatResponse(ResponseModel):
    success: Literal[True]
    message: str
    server_time: str = Field(description="ISO 8601 UTC with `Z`")
    heartbeat_interval: int = Field(description="Seconds between heartbeats")


class PolledCommand(ResponseModel):
    id: str
    command_type: CommandType
    priority: CommandPriority
    payload: dict[str, Any]
    correlation_id: str | None
    attempt: int = Field(description="Delivery attempt (1 on the first delivery)")
    lease_expires_at: str | None = Field(description="ISO 8601 UTC; no redelivery before it")
    created_at: str | None = None


class PollResponse(ResponseModel):
    commands: list[PolledCommand]
    polling_mode: Literal["immediate", "normal", "slow"]
    next_poll_interval: int = Field(description="Seconds")


class CommandResultResponse(ResponseModel):
    success: Literal[True]
    status: CommandStatus = Field(description="The command's status after this report")
    message: str
    duplicate: bool | None = Field(default=None, description="The same terminal result again")
    late: bool | None = Field(default=None, description="Recorded after the server ended it")


class SatelliteConfigResponse(ResponseModel):
    """Serialised canonically (sorted keys); `config_version` is also the `ETag`."""

    mcp_servers: dict[str, dict[str, Any]] = Field(
        description="Entries keyed by process id `{server_slug}-{team_slug}-{installation_id}`"
    )
    satellite_config: dict[str, Any]
    config_version: str


class EventFailureOut(ResponseModel):
    index: int = Field(description="Position of the event in the request")
    type: str | None
    error: str


class EventsResponse(ResponseModel):
    success: Literal[True]
    processed: int
    failed: int
    event_ids: list[str] = Field(description="Ids of the accepted events, in request order")
    failures: list[EventFailureOut] | None = Field(
        default=None, description="Only when an event failed"
    )


__all__ = [
    "CommandResultResponse", "ErrorDetail", "ErrorResponse", "EventFailureOut", "EventsResponse",
    "HealthResponse", "HealthUnavailableResponse", "HeartbeatResponse", "PollResponse",
    "PolledCommand", "RegisteredSatellite", "RegistrationResponse", "RegistrationStatusResponse",
    "SatelliteConfigResponse",
]
