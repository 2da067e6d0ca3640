"""Commands as people see them (docs/graphql.md §3)."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from app.models import SatelliteCommand
from app.schema.enums import CommandPriority, CommandStatus, CommandType


@strawberry.type
class Command:
    id: strawberry.ID
    satellite_id: strawberry.ID
    team_id: strawberry.ID | None
    command_type: CommandType
    priority: CommandPriority
    status: CommandStatus
    payload: JSON
    result: JSON | None
    error_message: str | None
    attempts: int
    late: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: SatelliteCommand) -> Command:
        team_id = row.team_id  # type: ignore[attr-defined]
        return cls(
            id=strawberry.ID(row.id),
            satellite_id=strawberry.ID(row.satellite_id),  # type: ignore[attr-defined]
            team_id=None if team_id is None else strawberry.ID(team_id),
            command_type=row.command_type, priority=row.priority, status=row.status,
            payload=row.payload, result=row.result, error_message=row.error_message,
            attempts=row.attempts, late=row.late, created_at=row.created_at,
            updated_at=row.updated_at,
        )


__all__ = ["Command"]
