"""Webhooks people manage (docs/alerts.md §4): a team's, by its admins, hearing of the
team's alerts; global ones, by global admins, hearing of every alert.

The signing secret is made here, shown once in the answer to its creation, and
stored sealed with the server's key ring (never in a log, never read back).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from tortoise.queryset import QuerySet

from app.errors import NotFound, ValidationError
from app.models import Webhook, WebhookDelivery
from app.services.alerts.context import AlertsContext
from app.services.alerts.delivery import checked_url, queue_test, refused_address
from app.services.alerts.engine import clear_finding
from app.services.alerts.rules import AlertRule
from app.services.common.audit import record_audit
from app.services.people.permissions import require_global_admin, require_team_admin
from app.services.people.principals import Principal
from app.services.people.scope import Kind, scoped

MAX_WEBHOOKS_PER_SCOPE = 20
DESCRIPTION_LIMIT = 255


@dataclass(frozen=True, slots=True)
class NewWebhook:
    webhook: Webhook
    secret: str  # shown once


def webhooks(principal: Principal, team_id: str | None = None) -> QuerySet[Webhook]:
    """The webhooks the caller manages: their administered teams' (all, for global
    admins, with the global ones)."""
    query = Webhook.all() if team_id is None else Webhook.filter(team_id=team_id)
    return scoped(principal, query, Kind.TEAM_ADMINISTERED).order_by("created_at", "id")


async def _require_manager(principal: Principal, team_id: str | None) -> None:
    if team_id is None:
        require_global_admin(principal)
    else:
        await require_team_admin(principal, team_id)


async def create_webhook(rt: AlertsContext, principal: Principal, *, team_id: str | None,
                         url: str, description: str = "") -> NewWebhook:
    await _require_manager(principal, team_id)
    url = checked_url(url)
    if len(description) > DESCRIPTION_LIMIT:
        raise ValidationError(f"The description is longer than {DESCRIPTION_LIMIT} characters")
    refused = await refused_address(url, rt.settings.webhook_allow_private)
    if refused is not None:
        raise ValidationError(f"Webhooks cannot point there: {refused}", code="webhook_refused")
    if await Webhook.filter(team_id=team_id).count() >= MAX_WEBHOOKS_PER_SCOPE:
        raise ValidationError(f"At most {MAX_WEBHOOKS_PER_SCOPE} webhooks per team (and "
                              "globally); delete one first")
    secret = "whsec_" + secrets.token_urlsafe(32)
    webhook = await Webhook.create(team_id=team_id, url=url, description=description,
                                   secret_sealed=rt.secrets.encrypt(secret))
    await record_audit("webhook.created", actor=principal.actor, object_type="webhook",
                       object_id=webhook.id, team_id=team_id, details={"url": url})
    return NewWebhook(webhook, secret)


async def require_webhook(principal: Principal, webhook_id: str) -> Webhook:
    webhook = await webhooks(principal).filter(id=webhook_id).first()
    if webhook is None:
        raise NotFound("No such webhook")
    return webhook


async def delete_webhook(rt: AlertsContext, principal: Principal, webhook_id: str) -> None:
    webhook = await require_webhook(principal, webhook_id)
    await webhook.delete()
    await record_audit("webhook.deleted", actor=principal.actor, object_type="webhook",
                       object_id=webhook.id, team_id=webhook.team_id,  # type: ignore[attr-defined]
                       details={"url": webhook.url})


async def enable_webhook(rt: AlertsContext, principal: Principal, webhook_id: str) -> Webhook:
    """Back on after it was disabled for failing; its failure count starts again and its
    `webhook_disabled` alert resolves."""
    webhook = await require_webhook(principal, webhook_id)
    await Webhook.filter(id=webhook.id).update(enabled=True, consecutive_failures=0,
                                               disabled_reason=None)
    webhook.enabled, webhook.consecutive_failures, webhook.disabled_reason = True, 0, None
    await record_audit("webhook.enabled", actor=principal.actor, object_type="webhook",
                       object_id=webhook.id, team_id=webhook.team_id)  # type: ignore[attr-defined]
    await clear_finding(rt, AlertRule.WEBHOOK_DISABLED, webhook.id)
    return webhook


async def test_webhook(rt: AlertsContext, principal: Principal,
                       webhook_id: str) -> WebhookDelivery:
    """Queue a `webhook.test` delivery (sent at once by the delivery run)."""
    webhook = await require_webhook(principal, webhook_id)
    if not webhook.enabled:
        raise ValidationError("The webhook is disabled; enable it first",
                              code="webhook_disabled")
    delivery = await queue_test(rt, webhook)
    rt.alerts.deliveries_due.set()
    return delivery


def deliveries(webhook: Webhook) -> QuerySet[WebhookDelivery]:
    """A webhook's delivery log, newest first."""
    return WebhookDelivery.filter(webhook_id=webhook.id).order_by("-created_at", "-id")


__all__ = ["NewWebhook", "create_webhook", "delete_webhook", "deliveries", "enable_webhook",
           "require_webhook", "test_webhook", "webhooks"]
