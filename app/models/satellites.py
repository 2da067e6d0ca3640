"""Satellites, their registration tokens, processes and heartbeat history."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

from app.models.enums import (
    HealthStatus,
    ProcessStatus,
    ReportedStatus,
    SatelliteStatus,
    SatelliteType,
    TokenScope,
)
from app.models.ids import ID_LENGTH, new_id
from app.models.people import Team, User


class Satellite(Model):
    id = fields.CharField(max_length=ID_LENGTH, primary_key=True, default=new_id)
    # Unique among live satellites; a deleted satellite's name is freed (see services).
    name = fields.CharField(max_length=80, unique=True)
    satellite_type = fields.CharEnumField(SatelliteType, max_length=8)
    team: fields.ForeignKeyNullableRelation[Team] = fields.ForeignKeyField(
        "models.Team", related_name="satellites", null=True, on_delete=fields.CASCADE
    )
    status = fields.CharEnumField(SatelliteStatus, max_length=16, default=SatelliteStatus.INACTIVE)
    online = fields.BooleanField(default=False)
    reported_status = fields.CharEnumField(ReportedStatus, max_length=16, null=True)
    last_heartbeat_at = fields.DatetimeField(null=True)
    version = fields.CharField(max_length=64, null=True)
    satellite_url = fields.CharField(max_length=2048, null=True)
    capabilities: Any = fields.JSONField(default=list)
    system_info: Any = fields.JSONField(default=dict)
    latest_metrics: Any = fields.JSONField(null=True)
    process_count = fields.IntField(default=0)
    error_count = fields.IntField(default=0)
    # API key: public key id (indexed) + Argon2id hash of the whole key.
    api_key_id = fields.CharField(max_length=16, unique=True, null=True)
    api_key_hash = fields.CharField(max_length=255, null=True)
    key_generation = fields.IntField(default=1)
    # The current key came from an operator's rotation and has not authenticated yet:
    # until it does, a token of the same scope re-registers the satellite even unbound.
    rotated_key_unused = fields.BooleanField(default=False)
    # Bumped by every administrative change (status, key, network, team), so each
    # instance's in-memory copy can tell a newer row from one it already applied.
    revision = fields.IntField(default=1)
    key_last_used_at = fields.DatetimeField(null=True)
    allowed_cidrs: Any = fields.JSONField(default=list)
    labels: Any = fields.JSONField(default=dict)
    config_overrides: Any = fields.JSONField(default=dict)
    registered_at = fields.DatetimeField(auto_now_add=True)
    deleted_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True, db_index=True)

    class Meta:
        table = "satellites"


class RegistrationToken(Model):
    """One issued registration token: never the token itself, only its SHA-256."""

    jti = fields.CharField(max_length=64, primary_key=True)
    scope = fields.CharEnumField(TokenScope, max_length=8)
    team: fields.ForeignKeyNullableRelation[Team] = fields.ForeignKeyField(
        "models.Team", related_name="registration_tokens", null=True, on_delete=fields.CASCADE
    )
    satellite_name = fields.CharField(max_length=80, null=True)
    token_hash = fields.CharField(max_length=64)
    created_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="issued_tokens", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    used_by_satellite_id = fields.CharField(max_length=ID_LENGTH, null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "satellite_registration_tokens"


class SatelliteProcess(Model):
    """An MCP server process as the satellite reports it, keyed by the satellite's own id."""

    id = fields.CharField(max_length=ID_LENGTH, primary_key=True, default=new_id)
    satellite: fields.ForeignKeyRelation[Satellite] = fields.ForeignKeyField(
        "models.Satellite", related_name="processes", on_delete=fields.CASCADE
    )
    process_id = fields.CharField(max_length=255)
    server_name = fields.CharField(max_length=255, null=True)
    installation_id = fields.CharField(max_length=ID_LENGTH, null=True, db_index=True)
    team: fields.ForeignKeyNullableRelation[Team] = fields.ForeignKeyField(
        "models.Team", related_name="processes", null=True, on_delete=fields.SET_NULL
    )
    status = fields.CharEnumField(ProcessStatus, max_length=16, default=ProcessStatus.UNKNOWN)
    health_status = fields.CharEnumField(
        HealthStatus, max_length=16, default=HealthStatus.UNKNOWN
    )
    performance_metrics: Any = fields.JSONField(null=True)
    os_pid = fields.IntField(null=True)
    error_message = fields.TextField(null=True)
    missed_heartbeats = fields.IntField(default=0)
    started_at = fields.DatetimeField(null=True)
    last_reported_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "satellite_processes"
        unique_together = (("satellite", "process_id"),)


class SatelliteHeartbeat(Model):
    id = fields.BigIntField(primary_key=True)
    satellite: fields.ForeignKeyRelation[Satellite] = fields.ForeignKeyField(
        "models.Satellite", related_name="heartbeats", on_delete=fields.CASCADE
    )
    timestamp = fields.DatetimeField()
    status = fields.CharEnumField(ReportedStatus, max_length=16)
    cpu_usage_percent = fields.FloatField()
    memory_usage_mb = fields.FloatField()
    disk_usage_percent = fields.FloatField(null=True)
    uptime_seconds = fields.FloatField(null=True)
    network_rx_bytes = fields.BigIntField(null=True)
    network_tx_bytes = fields.BigIntField(null=True)
    process_count = fields.IntField(default=0)
    error_count = fields.IntField(default=0)

    class Meta:
        table = "satellite_heartbeats"
        indexes = (Index(fields=("satellite_id", "timestamp")),)
