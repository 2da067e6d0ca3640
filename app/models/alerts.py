"""Alerts, their rule settings, and the webhooks that carry them out (docs/alerts.md)."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

from app.models.enums import AlertSeverity, AlertState, DeliveryState
from app.models.ids import ID_LENGTH, new_id
from app.models.people import Team, User
from app.models.satellites import Satellite


class Alert(Model):
    """One alert per (rule, subject) while it is not resolved: `open_key` is unique and
    set only then, so instances raising the same alert at once make one row."""

    id = fields.CharField(primary_key=True, max_length=ID_LENGTH, default=new_id)
    rule = fields.CharField(max_length=48)
    subject = fields.CharField(max_length=255)
    open_key = fields.CharField(max_length=320, null=True, unique=True)
    satellite: fields.ForeignKeyNullableRelation[Satellite] = fields.ForeignKeyField(
        "models.Satellite", related_name="alerts", null=True, on_delete=fields.CASCADE
    )
    team: fields.ForeignKeyNullableRelation[Team] = fields.ForeignKeyField(
        "models.Team", related_name="alerts", null=True, on_delete=fields.CASCADE
    )
    installation_id = fields.CharField(max_length=ID_LENGTH, null=True)
    severity = fields.CharEnumField(AlertSeverity, max_length=16)
    state = fields.CharEnumField(AlertState, max_length=16, default=AlertState.OPEN)
    summary = fields.CharField(max_length=500)
    details: Any = fields.JSONField(default=dict)
    occurrences = fields.IntField(default=1)
    opened_at = fields.DatetimeField()
    last_seen_at = fields.DatetimeField()
    resolved_at = fields.DatetimeField(null=True)
    acknowledged_at = fields.DatetimeField(null=True)
    acknowledged_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="acknowledged_alerts", null=True,
        on_delete=fields.SET_NULL,
    )
    silenced_until = fields.DatetimeField(null=True)

    class Meta:
        table = "alerts"
        indexes = (Index(fields=("team_id", "state", "opened_at")),
                   Index(fields=("state", "opened_at")))
        table_description = "Alerts raised by the rules of docs/alerts.md, one open per subject."


class AlertRuleSetting(Model):
    """A rule's settings: `scope` is `global` (the defaults) or a team id (its override)."""

    id = fields.BigIntField(primary_key=True)
    rule = fields.CharField(max_length=48)
    scope = fields.CharField(max_length=ID_LENGTH)
    enabled = fields.BooleanField(default=True)
    params: Any = fields.JSONField(default=dict)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "alert_rule_settings"
        unique_together = (("rule", "scope"),)


class Webhook(Model):
    """Where alerts are sent: a team's (its alerts) or global (every alert)."""

    id = fields.CharField(primary_key=True, max_length=ID_LENGTH, default=new_id)
    team: fields.ForeignKeyNullableRelation[Team] = fields.ForeignKeyField(
        "models.Team", related_name="webhooks", null=True, on_delete=fields.CASCADE
    )
    url = fields.CharField(max_length=2048)
    description = fields.CharField(max_length=255, default="")
    secret_sealed = fields.TextField()
    enabled = fields.BooleanField(default=True)
    consecutive_failures = fields.IntField(default=0)
    disabled_reason = fields.CharField(max_length=255, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "webhooks"


class WebhookDelivery(Model):
    """One message to one webhook, kept until delivered or given up (durable retries)."""

    id = fields.BigIntField(primary_key=True)
    webhook: fields.ForeignKeyRelation[Webhook] = fields.ForeignKeyField(
        "models.Webhook", related_name="deliveries", on_delete=fields.CASCADE
    )
    alert: fields.ForeignKeyNullableRelation[Alert] = fields.ForeignKeyField(
        "models.Alert", related_name="deliveries", null=True, on_delete=fields.SET_NULL
    )
    event = fields.CharField(max_length=48)
    body = fields.TextField()
    state = fields.CharEnumField(DeliveryState, max_length=16, default=DeliveryState.PENDING)
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField()
    last_status = fields.IntField(null=True)
    last_error = fields.CharField(max_length=500, null=True)
    created_at = fields.DatetimeField()
    delivered_at = fields.DatetimeField(null=True)

    class Meta:
        table = "webhook_deliveries"
        indexes = (Index(fields=("state", "next_attempt_at")),
                   Index(fields=("webhook_id", "created_at")))
