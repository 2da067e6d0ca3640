"""MCP server catalogue, team installations (with revisions), user configs, tools."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model

from app.models.enums import TransportType
from app.models.ids import ID_LENGTH, new_id
from app.models.people import Team, User
from app.models.satellites import Satellite


class McpServer(Model):
    """A catalogue template: the lowest tier of the configuration merge."""

    id = fields.CharField(max_length=ID_LENGTH, primary_key=True, default=new_id)
    slug = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=200)
    description = fields.TextField(null=True)
    transport_type = fields.CharEnumField(TransportType, max_length=8)
    command = fields.CharField(max_length=1024, null=True)
    args: Any = fields.JSONField(default=list)
    env: Any = fields.JSONField(default=dict)
    url = fields.CharField(max_length=2048, null=True)
    headers: Any = fields.JSONField(default=dict)
    url_query_params: Any = fields.JSONField(default=dict)
    timeout_ms = fields.IntField(null=True)
    # Schema lists per tier: [{"name", "required"?, "secret"?, "description"?}]
    team_args_schema: Any = fields.JSONField(null=True)
    team_env_schema: Any = fields.JSONField(null=True)
    team_headers_schema: Any = fields.JSONField(null=True)
    team_url_query_params_schema: Any = fields.JSONField(null=True)
    user_args_schema: Any = fields.JSONField(null=True)
    user_env_schema: Any = fields.JSONField(null=True)
    user_headers_schema: Any = fields.JSONField(null=True)
    user_url_query_params_schema: Any = fields.JSONField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "mcp_servers"


class McpInstallation(Model):
    """A team installation of a catalogue server (the team tier), secrets encrypted."""

    id = fields.CharField(max_length=ID_LENGTH, primary_key=True, default=new_id)
    team: fields.ForeignKeyRelation[Team] = fields.ForeignKeyField(
        "models.Team", related_name="installations", on_delete=fields.CASCADE
    )
    server: fields.ForeignKeyRelation[McpServer] = fields.ForeignKeyField(
        "models.McpServer", related_name="installations", on_delete=fields.RESTRICT
    )
    name = fields.CharField(max_length=200)
    owner: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="owned_installations", null=True, on_delete=fields.SET_NULL
    )
    pinned_satellite: fields.ForeignKeyNullableRelation[Satellite] = fields.ForeignKeyField(
        "models.Satellite", related_name="pinned_installations", null=True,
        on_delete=fields.SET_NULL,
    )
    args: Any = fields.JSONField(default=list)
    env: Any = fields.JSONField(default=dict)
    headers: Any = fields.JSONField(default=dict)
    url_query_params: Any = fields.JSONField(default=dict)
    settings: Any = fields.JSONField(default=dict)
    enabled = fields.BooleanField(default=True)
    # Runtime status as satellites report it (mcp.server.status_changed).
    status = fields.CharField(max_length=32, default="provisioning")
    status_message = fields.TextField(null=True)
    revision = fields.IntField(default=1)
    last_good_rendering: Any = fields.JSONField(null=True)
    render_error = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "mcp_server_installations"


class McpInstallationRevision(Model):
    """A numbered snapshot of an installation's team and owner configuration."""

    id = fields.CharField(max_length=ID_LENGTH, primary_key=True, default=new_id)
    installation: fields.ForeignKeyRelation[McpInstallation] = fields.ForeignKeyField(
        "models.McpInstallation", related_name="revisions", on_delete=fields.CASCADE
    )
    revision = fields.IntField()
    snapshot: Any = fields.JSONField()
    actor: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="installation_revisions", null=True,
        on_delete=fields.SET_NULL,
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "mcp_installation_revisions"
        unique_together = (("installation", "revision"),)


class McpUserConfig(Model):
    """A user tier for one installation, secrets encrypted."""

    id = fields.CharField(max_length=ID_LENGTH, primary_key=True, default=new_id)
    installation: fields.ForeignKeyRelation[McpInstallation] = fields.ForeignKeyField(
        "models.McpInstallation", related_name="user_configs", on_delete=fields.CASCADE
    )
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="mcp_configs", on_delete=fields.CASCADE
    )
    args: Any = fields.JSONField(default=list)
    env: Any = fields.JSONField(default=dict)
    headers: Any = fields.JSONField(default=dict)
    url_query_params: Any = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "mcp_user_configs"
        unique_together = (("installation", "user"),)


class McpTool(Model):
    id = fields.CharField(max_length=ID_LENGTH, primary_key=True, default=new_id)
    installation: fields.ForeignKeyRelation[McpInstallation] = fields.ForeignKeyField(
        "models.McpInstallation", related_name="tools", on_delete=fields.CASCADE
    )
    team: fields.ForeignKeyRelation[Team] = fields.ForeignKeyField(
        "models.Team", related_name="tools", on_delete=fields.CASCADE
    )
    tool_name = fields.CharField(max_length=255)
    description = fields.TextField(null=True)
    input_schema: Any = fields.JSONField(null=True)
    token_count = fields.IntField(null=True)
    discovered_at = fields.DatetimeField()

    class Meta:
        table = "mcp_tools"
