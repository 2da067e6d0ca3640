"""Alerts, rule settings and webhooks as people see them (docs/alerts.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

from app.models import Alert as AlertRow
from app.models import Webhook as WebhookRow
from app.models import WebhookDelivery as DeliveryRow
from app.models.enums import AlertSeverity, AlertState, DeliveryState
from app.services.alerts.rules import SPECS, AlertRule, RuleSettings

for _enum in (AlertSeverity, AlertState, AlertRule, DeliveryState):
    strawberry.enum(_enum)


def _id(value: Any) -> strawberry.ID | None:
    return None if value is None else strawberry.ID(str(value))


@strawberry.type
class Alert:
    id: strawberry.ID
    rule: AlertRule
    subject: str
    severity: AlertSeverity
    state: AlertState
    summary: str
    details: JSON
    occurrences: int
    team_id: strawberry.ID | None
    satellite_id: strawberry.ID | None
    installation_id: strawberry.ID | None
    opened_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by_id: strawberry.ID | None
    silenced_until: datetime | None

    @classmethod
    def of(cls, row: AlertRow) -> Alert:
        details: Any = row.details
        return cls(
            id=strawberry.ID(row.id), rule=AlertRule(row.rule), subject=row.subject,
            severity=row.severity, state=row.state, summary=row.summary, details=details,
            occurrences=row.occurrences, team_id=_id(row.team_id),  # type: ignore[attr-defined]
            satellite_id=_id(row.satellite_id),  # type: ignore[attr-defined]
            installation_id=_id(row.installation_id), opened_at=row.opened_at,
            last_seen_at=row.last_seen_at, resolved_at=row.resolved_at,
            acknowledged_at=row.acknowledged_at,
            acknowledged_by_id=_id(row.acknowledged_by_id),  # type: ignore[attr-defined]
            silenced_until=row.silenced_until,
        )


@strawberry.type
class AlertChange:
    transition: str = strawberry.field(
        description="opened, resolved, acknowledged, silenced or unsilenced")
    alert: Alert


@strawberry.type
class AlertRuleSettings:
    rule: AlertRule
    description: str
    severity: AlertSeverity
    enabled: bool
    params: JSON
    team_id: strawberry.ID | None = strawberry.field(
        description="The team whose override these settings are; null: the global settings.")

    @classmethod
    def of(cls, settings: RuleSettings) -> AlertRuleSettings:
        spec = SPECS[settings.rule]
        params: Any = settings.params
        return cls(rule=settings.rule, description=spec.description, severity=spec.severity,
                   enabled=settings.enabled, params=params,
                   team_id=None if settings.scope == "global" else strawberry.ID(settings.scope))


@strawberry.type
class Webhook:
    id: strawberry.ID
    team_id: strawberry.ID | None
    url: str
    description: str
    enabled: bool
    consecutive_failures: int
    disabled_reason: str | None
    created_at: datetime

    @classmethod
    def of(cls, row: WebhookRow) -> Webhook:
        return cls(id=strawberry.ID(row.id), team_id=_id(row.team_id),  # type: ignore[attr-defined]
                   url=row.url, description=row.description, enabled=row.enabled,
                   consecutive_failures=row.consecutive_failures,
                   disabled_reason=row.disabled_reason, created_at=row.created_at)


@strawberry.type
class CreatedWebhook:
    secret: str = strawberry.field(description="The signing secret, shown only in this answer.")
    webhook: Webhook


@strawberry.type
class WebhookDelivery:
    id: strawberry.ID
    webhook_id: strawberry.ID
    alert_id: strawberry.ID | None
    event: str
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None

    @classmethod
    def of(cls, row: DeliveryRow) -> WebhookDelivery:
        return cls(id=strawberry.ID(str(row.id)),
                   webhook_id=strawberry.ID(row.webhook_id),  # type: ignore[attr-defined]
                   alert_id=_id(row.alert_id),  # type: ignore[attr-defined]
                   event=row.event, state=row.state, attempts=row.attempts,
                   next_attempt_at=row.next_attempt_at, last_status=row.last_status,
                   last_error=row.last_error, created_at=row.created_at,
                   delivered_at=row.delivered_at)


__all__ = ["Alert", "AlertChange", "AlertRuleSettings", "CreatedWebhook", "Webhook",
           "WebhookDelivery"]
