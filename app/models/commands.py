"""The per-satellite command queue."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

from app.models.enums import CommandPriority, CommandStatus, CommandType
from app.models.ids import ID_LENGTH, new_id
from app.models.people import Team, User
from app.models.satellites import Satellite


class SatelliteCommand(Model):
    id = fields.CharField(max_length=ID_LENGTH, primary_key=True, default=new_id)
    satellite: fields.ForeignKeyRelation[Satellite] = fields.ForeignKeyField(
        "models.Satellite", related_name="commands", on_delete=fields.CASCADE
    )
    # The team a command belongs to (the installation's team on a global satellite).
    team: fields.ForeignKeyNullableRelation[Team] = fields.ForeignKeyField(
        "models.Team", related_name="commands", null=True, on_delete=fields.SET_NULL
    )
    command_type = fields.CharEnumField(CommandType, max_length=32)
    priority = fields.CharEnumField(CommandPriority, max_length=16)
    priority_rank = fields.SmallIntField()
    status = fields.CharEnumField(CommandStatus, max_length=16, default=CommandStatus.PENDING)
    payload: Any = fields.JSONField(default=dict)
    correlation_id = fields.CharField(max_length=ID_LENGTH, default=new_id)
    result: Any = fields.JSONField(null=True)
    error_message = fields.TextField(null=True)
    attempts = fields.IntField(default=0)
    max_attempts = fields.IntField(default=3)
    delivered_at = fields.DatetimeField(null=True)
    lease_expires_at = fields.DatetimeField(null=True)
    expires_at = fields.DatetimeField()
    completed_at = fields.DatetimeField(null=True)
    # A result that arrived after the server had ended or re-queued the command.
    late = fields.BooleanField(default=False)
    # The terminal status the satellite itself reported (duplicates compare against it).
    reported_status = fields.CharEnumField(CommandStatus, max_length=16, null=True)
    created_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="commands", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "satellite_commands"
        indexes = (
            Index(fields=("satellite_id", "status", "priority_rank", "created_at")),
            Index(fields=("status", "lease_expires_at")),
            Index(fields=("status", "expires_at")),
        )
