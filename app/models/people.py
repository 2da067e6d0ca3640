"""Users, teams, memberships and sessions."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from app.models.enums import GlobalRole, TeamRole
from app.models.ids import ID_LENGTH, new_id


class User(Model):
    id = fields.CharField(max_length=ID_LENGTH, primary_key=True, default=new_id)
    email = fields.CharField(max_length=254, unique=True)
    password_hash = fields.CharField(max_length=255)
    global_role = fields.CharEnumField(GlobalRole, max_length=16, default=GlobalRole.GLOBAL_USER)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "users"


class Team(Model):
    id = fields.CharField(max_length=ID_LENGTH, primary_key=True, default=new_id)
    name = fields.CharField(max_length=100)
    slug = fields.CharField(max_length=64, unique=True)
    # Resource limits narrowing the global defaults (null: no narrowing).
    max_processes = fields.IntField(null=True)
    max_memory_per_process_mb = fields.IntField(null=True)
    max_cpu_percent = fields.FloatField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "teams"


class TeamMembership(Model):
    id = fields.CharField(max_length=ID_LENGTH, primary_key=True, default=new_id)
    team: fields.ForeignKeyRelation[Team] = fields.ForeignKeyField(
        "models.Team", related_name="memberships", on_delete=fields.CASCADE
    )
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="memberships", on_delete=fields.CASCADE
    )
    role = fields.CharEnumField(TeamRole, max_length=16)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "team_memberships"
        unique_together = (("team", "user"),)


class Session(Model):
    """A login session. The primary key is a SHA-256 digest of the session token."""

    id = fields.CharField(max_length=64, primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="sessions", on_delete=fields.CASCADE
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    last_seen_at = fields.DatetimeField()
    expires_at = fields.DatetimeField(db_index=True)
    address = fields.CharField(max_length=64, null=True)
    user_agent = fields.CharField(max_length=255, null=True)

    class Meta:
        table = "sessions"
