"""GraphQL enums: upper-case names, the REST wire forms as values (docs/graphql.md §3)."""

from __future__ import annotations

from enum import Enum

import strawberry

from app.models import enums as model
from app.models.enums import (
    CommandPriority,
    CommandStatus,
    CommandType,
    GlobalRole,
    SatelliteType,
    TeamRole,
    TokenScope,
)

# The model enums themselves become GraphQL enums (strawberry marks the class in place):
# member names are the GraphQL values, member values the REST forms.
for _enum in (CommandPriority, CommandStatus, CommandType, GlobalRole, SatelliteType,
              TeamRole, TokenScope):
    strawberry.enum(_enum)


@strawberry.enum(name="SatelliteStatus")
class SatelliteStatus(Enum):
    """The administrative status (deleted satellites are never shown)."""

    INACTIVE = "inactive"
    ACTIVE = "active"
    MAINTENANCE = "maintenance"
    DISABLED = "disabled"


def satellite_status(status: model.SatelliteStatus) -> SatelliteStatus:
    return SatelliteStatus(status.value)


__all__ = [
    "CommandPriority",
    "CommandStatus",
    "CommandType",
    "GlobalRole",
    "SatelliteStatus",
    "SatelliteType",
    "TeamRole",
    "TokenScope",
    "satellite_status",
]
