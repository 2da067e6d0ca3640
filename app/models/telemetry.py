"""What satellites report back: events, usage, logs, client activity, and the audit log."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

from app.models.enums import ActorType
from app.models.ids import ID_LENGTH
from app.models.people import Team, User
from app.models.satellites import Satellite


class SatelliteEvent(Model):
    """The event log. The integer id is the monotonic cursor for streams."""

    id = fields.BigIntField(primary_key=True)
    satellite: fields.ForeignKeyRelation[Satellite] = fields.ForeignKeyField(
        "models.Satellite", related_name="events", on_delete=fields.CASCADE
    )
    team: fields.ForeignKeyNullableRelation[Team] = fields.ForeignKeyField(
        "models.Team", related_name="events", null=True, on_delete=fields.SET_NULL
    )
    installation_id = fields.CharField(max_length=ID_LENGTH, null=True)
    event_type = fields.CharField(max_length=64)
    client_event_id = fields.CharField(max_length=128, null=True)
    occurred_at = fields.DatetimeField()
    data: Any = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "satellite_events"
        unique_together = (("satellite", "client_event_id"),)
        indexes = (Index(fields=("satellite_id", "created_at")),)


class SatelliteUsageLog(Model):
    id = fields.BigIntField(primary_key=True)
    satellite: fields.ForeignKeyRelation[Satellite] = fields.ForeignKeyField(
        "models.Satellite", related_name="usage_logs", on_delete=fields.CASCADE
    )
    team: fields.ForeignKeyNullableRelation[Team] = fields.ForeignKeyField(
        "models.Team", related_name="usage_logs", null=True, on_delete=fields.SET_NULL
    )
    installation_id = fields.CharField(max_length=ID_LENGTH, null=True)
    user: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="usage_logs", null=True, on_delete=fields.SET_NULL
    )
    tool_name = fields.CharField(max_length=255)
    server_slug = fields.CharField(max_length=64, null=True)
    duration_ms = fields.FloatField(null=True)
    success = fields.BooleanField(default=True)
    error_message = fields.TextField(null=True)
    occurred_at = fields.DatetimeField()

    class Meta:
        table = "satellite_usage_logs"
        indexes = (Index(fields=("team_id", "occurred_at")),)


class McpServerLog(Model):
    id = fields.BigIntField(primary_key=True)
    installation_id = fields.CharField(max_length=ID_LENGTH, db_index=True)
    team: fields.ForeignKeyNullableRelation[Team] = fields.ForeignKeyField(
        "models.Team", related_name="server_logs", null=True, on_delete=fields.CASCADE
    )
    satellite_id = fields.CharField(max_length=ID_LENGTH, null=True)
    level = fields.CharField(max_length=16)
    message = fields.TextField()
    logged_at = fields.DatetimeField()

    class Meta:
        table = "mcp_server_logs"


class McpRequestLog(Model):
    id = fields.BigIntField(primary_key=True)
    installation_id = fields.CharField(max_length=ID_LENGTH, db_index=True)
    team: fields.ForeignKeyNullableRelation[Team] = fields.ForeignKeyField(
        "models.Team", related_name="request_logs", null=True, on_delete=fields.CASCADE
    )
    satellite_id = fields.CharField(max_length=ID_LENGTH, null=True)
    tool_name = fields.CharField(max_length=255)
    tool_params: Any = fields.JSONField(null=True)
    response_time_ms = fields.FloatField(null=True)
    success = fields.BooleanField(default=True)
    logged_at = fields.DatetimeField()

    class Meta:
        table = "mcp_request_logs"


class McpClientActivity(Model):
    """Latest client activity counters per satellite and team."""

    id = fields.BigIntField(primary_key=True)
    satellite: fields.ForeignKeyRelation[Satellite] = fields.ForeignKeyField(
        "models.Satellite", related_name="client_activity", on_delete=fields.CASCADE
    )
    team: fields.ForeignKeyRelation[Team] = fields.ForeignKeyField(
        "models.Team", related_name="client_activity", on_delete=fields.CASCADE
    )
    request_count = fields.BigIntField(default=0)
    tool_call_count = fields.BigIntField(default=0)
    last_activity_at = fields.DatetimeField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "mcp_client_activity"
        unique_together = (("satellite", "team"),)


class AuditEntry(Model):
    """Who did what to which object. The integer id is a monotonic cursor."""

    id = fields.BigIntField(primary_key=True)
    at = fields.DatetimeField(auto_now_add=True, db_index=True)
    actor_type = fields.CharEnumField(ActorType, max_length=16)
    actor_user_id = fields.CharField(max_length=ID_LENGTH, null=True)
    actor_satellite_id = fields.CharField(max_length=ID_LENGTH, null=True)
    action = fields.CharField(max_length=64, db_index=True)
    object_type = fields.CharField(max_length=32, null=True)
    object_id = fields.CharField(max_length=128, null=True)
    # No foreign key: history outlives the team until retention removes it.
    team_id = fields.CharField(max_length=ID_LENGTH, null=True)
    address = fields.CharField(max_length=64, null=True)
    details: Any = fields.JSONField(default=dict)

    class Meta:
        table = "audit_log"
        indexes = (Index(fields=("team_id", "id")),)


class McpClientSession(Model):
    """One MCP client's connection to a satellite for a team: who, from what, where, how long."""

    id = fields.BigIntField(primary_key=True)
    satellite: fields.ForeignKeyRelation[Satellite] = fields.ForeignKeyField(
        "models.Satellite", related_name="client_sessions", on_delete=fields.CASCADE
    )
    team: fields.ForeignKeyNullableRelation[Team] = fields.ForeignKeyField(
        "models.Team", related_name="client_sessions", null=True, on_delete=fields.CASCADE
    )
    # The satellite's own session id (unique per satellite).
    session_id = fields.CharField(max_length=255)
    client_type = fields.CharField(max_length=64, null=True)
    client_name = fields.CharField(max_length=255, null=True)
    transport = fields.CharField(max_length=32, null=True)
    user_agent = fields.CharField(max_length=512, null=True)
    ip_address = fields.CharField(max_length=64, null=True)
    user: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="client_sessions", null=True, on_delete=fields.SET_NULL
    )
    connected_at = fields.DatetimeField(null=True)
    disconnected_at = fields.DatetimeField(null=True, db_index=True)
    duration_seconds = fields.FloatField(null=True)
    tool_execution_count = fields.IntField(null=True)
    disconnect_reason = fields.CharField(max_length=64, null=True)
    last_activity_at = fields.DatetimeField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "mcp_client_sessions"
        unique_together = (("satellite", "session_id"),)
        indexes = (Index(fields=("team_id", "connected_at")),)


class SatelliteConfigState(Model):
    """The configuration a satellite last applied, and its last error fetching one."""

    satellite: fields.OneToOneRelation[Satellite] = fields.OneToOneField(
        "models.Satellite", related_name="config_state", on_delete=fields.CASCADE,
        primary_key=True,
    )
    refreshed_at = fields.DatetimeField(null=True)
    config_hash = fields.CharField(max_length=255, null=True)
    server_count = fields.IntField(null=True)
    teams_count = fields.IntField(null=True)
    change_detected = fields.BooleanField(null=True)
    fetch_duration_ms = fields.FloatField(null=True)
    error_at = fields.DatetimeField(null=True)
    error_type = fields.CharField(max_length=64, null=True)
    error_message = fields.TextField(null=True)
    error_status_code = fields.IntField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "satellite_config_states"


class ResourceLimitBreach(Model):
    """A team resource limit a satellite reported as exceeded (input to alerts)."""

    id = fields.BigIntField(primary_key=True)
    satellite: fields.ForeignKeyRelation[Satellite] = fields.ForeignKeyField(
        "models.Satellite", related_name="limit_breaches", on_delete=fields.CASCADE
    )
    team: fields.ForeignKeyNullableRelation[Team] = fields.ForeignKeyField(
        "models.Team", related_name="limit_breaches", null=True, on_delete=fields.CASCADE
    )
    resource_type = fields.CharField(max_length=32)
    current_value = fields.FloatField(null=True)
    limit_value = fields.FloatField(null=True)
    occurred_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "resource_limit_breaches"
        indexes = (Index(fields=("team_id", "occurred_at")),)
