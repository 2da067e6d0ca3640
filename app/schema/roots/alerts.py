"""Root fields for alerts, alert rules and webhooks (docs/alerts.md).

Reads are scoped like every team-owned row: a team's alerts for its members, the
alerts of no team for global administrators. Changes are for the team's admins
(global ones for global administrators), checked in `services.alerts`.
"""

from __future__ import annotations

import strawberry

from app.resolvers import alerts as resolve
from app.resolvers import live
from app.schema.pagination import Connection
from app.schema.permissions import SIGNED_IN
from app.schema.types.alerts import (
    Alert,
    AlertRuleSettings,
    CreatedWebhook,
    Webhook,
    WebhookDelivery,
)


@strawberry.type
class AlertsQuery:
    alerts: Connection[Alert] = strawberry.field(
        resolver=resolve.alerts, permission_classes=SIGNED_IN,
        description="Newest first; `state` narrows to those states (e.g. [OPEN, ACKNOWLEDGED]).")
    alert: Alert | None = strawberry.field(resolver=resolve.alert, permission_classes=SIGNED_IN)
    alert_rules: list[AlertRuleSettings] = strawberry.field(
        resolver=resolve.alert_rules, permission_classes=SIGNED_IN,
        description="Every rule's effective settings for a team (without teamId: global).")
    webhooks: list[Webhook] = strawberry.field(
        resolver=resolve.webhooks_, permission_classes=SIGNED_IN,
        description="The webhooks the caller manages (team admins: their teams').")
    webhook_deliveries: Connection[WebhookDelivery] = strawberry.field(
        resolver=resolve.webhook_deliveries, permission_classes=SIGNED_IN,
        description="A webhook's delivery log, newest first.")


@strawberry.type
class AlertsMutation:
    acknowledge_alert: Alert = strawberry.mutation(
        resolver=resolve.acknowledge_alert, permission_classes=SIGNED_IN)
    silence_alert: Alert = strawberry.mutation(
        resolver=resolve.silence_alert, permission_classes=SIGNED_IN,
        description="No notifications until `until` (null lifts the silence).")
    set_alert_rule: AlertRuleSettings = strawberry.mutation(
        resolver=resolve.set_alert_rule, permission_classes=SIGNED_IN,
        description="Change a rule for a team (its admins) or globally (global "
                    "administrators); `reset` removes the team's override.")
    create_webhook: CreatedWebhook = strawberry.mutation(
        resolver=resolve.create_webhook, permission_classes=SIGNED_IN)
    delete_webhook: bool = strawberry.mutation(
        resolver=resolve.delete_webhook, permission_classes=SIGNED_IN)
    enable_webhook: Webhook = strawberry.mutation(
        resolver=resolve.enable_webhook, permission_classes=SIGNED_IN,
        description="Turn a webhook disabled after failed deliveries back on.")
    test_webhook: WebhookDelivery = strawberry.mutation(
        resolver=resolve.test_webhook, permission_classes=SIGNED_IN,
        description="Send a signed `webhook.test` delivery now.")


@strawberry.type
class AlertsSubscription:
    alert_changed = strawberry.subscription(
        resolver=live.alert_changed, permission_classes=SIGNED_IN)


__all__ = ["AlertsMutation", "AlertsQuery", "AlertsSubscription"]
