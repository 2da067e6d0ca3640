"""Alerts, rule settings and webhooks: GraphQL → `services.alerts` (docs/alerts.md)."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from app.errors import ValidationError
from app.models.enums import AlertState
from app.schema.context import Info, principal_of
from app.schema.pagination import Connection, paginate
from app.schema.types.alerts import (
    Alert,
    AlertRuleSettings,
    CreatedWebhook,
    Webhook,
    WebhookDelivery,
)
from app.services.alerts import lifecycle, settings, webhooks
from app.services.alerts.rules import AlertRule
from app.services.people import reads


async def alerts(info: Info, team_id: strawberry.ID | None = None,
                 state: list[AlertState] | None = None, first: int | None = 50,
                 after: str | None = None) -> Connection[Alert]:
    principal = principal_of(info)
    if team_id is not None:
        await reads.require_team(principal, team_id)
    query = reads.alerts(principal, team_id=team_id,
                         states=None if state is None else frozenset(state))
    return await paginate(query, first=first, after=after,
                          to_node=lambda rows: [Alert.of(row) for row in rows])


async def alert(info: Info, id: strawberry.ID) -> Alert | None:  # noqa: A002
    row = await reads.alert(principal_of(info), id)
    return None if row is None else Alert.of(row)


async def acknowledge_alert(info: Info, id: strawberry.ID) -> Alert:  # noqa: A002
    return Alert.of(await lifecycle.acknowledge_alert(info.context.rt, principal_of(info), id))


async def silence_alert(info: Info, id: strawberry.ID,  # noqa: A002
                        until: datetime | None) -> Alert:
    return Alert.of(await lifecycle.silence_alert(info.context.rt, principal_of(info), id,
                                                  until))


async def alert_rules(info: Info, team_id: strawberry.ID | None = None
                      ) -> list[AlertRuleSettings]:
    found = await settings.rule_settings(info.context.rt, principal_of(info), team_id)
    return [AlertRuleSettings.of(item) for item in found]


async def set_alert_rule(info: Info, rule: AlertRule, team_id: strawberry.ID | None = None,
                         enabled: bool | None = None, params: JSON | None = None,
                         reset: bool = False) -> AlertRuleSettings:
    if params is not None and not isinstance(params, dict):
        raise ValidationError("`params` must be an object of numbers")
    changed = await settings.set_rule_settings(
        info.context.rt, principal_of(info), rule, team_id=team_id, enabled=enabled,
        params=params, reset=reset)
    return AlertRuleSettings.of(changed)


async def webhooks_(info: Info, team_id: strawberry.ID | None = None) -> list[Webhook]:
    rows = await webhooks.webhooks(principal_of(info), team_id)
    return [Webhook.of(row) for row in rows]


async def create_webhook(info: Info, url: str, team_id: strawberry.ID | None = None,
                         description: str = "") -> CreatedWebhook:
    created = await webhooks.create_webhook(info.context.rt, principal_of(info),
                                            team_id=team_id, url=url, description=description)
    return CreatedWebhook(secret=created.secret, webhook=Webhook.of(created.webhook))


async def delete_webhook(info: Info, id: strawberry.ID) -> bool:  # noqa: A002
    await webhooks.delete_webhook(info.context.rt, principal_of(info), id)
    return True


async def enable_webhook(info: Info, id: strawberry.ID) -> Webhook:  # noqa: A002
    return Webhook.of(await webhooks.enable_webhook(info.context.rt, principal_of(info), id))


async def test_webhook(info: Info, id: strawberry.ID) -> WebhookDelivery:  # noqa: A002
    return WebhookDelivery.of(await webhooks.test_webhook(info.context.rt, principal_of(info), id))


async def webhook_deliveries(info: Info, id: strawberry.ID,  # noqa: A002
                             first: int | None = 50, after: str | None = None
                             ) -> Connection[WebhookDelivery]:
    webhook = await webhooks.require_webhook(principal_of(info), id)
    return await paginate(webhooks.deliveries(webhook), first=first, after=after,
                          to_node=lambda rows: [WebhookDelivery.of(row) for row in rows])
