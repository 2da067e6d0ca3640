"""Webhook deliveries: queued with the transition that caused them, signed, retried with
exponential backoff and jitter, given up after `WEBHOOK_MAX_ATTEMPTS`, and the webhook
disabled after `WEBHOOK_DISABLE_AFTER` deliveries given up in a row (docs/alerts.md §4).

Deliveries are rows, so a restart loses none: the next delivery run (on the leader)
picks up whatever is due. A delivery is at least once; its id travels in
`X-Groundstation-Delivery` so a receiver can drop a repeat.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import logging
import random
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from tortoise.expressions import F, Q

from app.errors import ValidationError
from app.models import Alert, Webhook, WebhookDelivery
from app.models.enums import DeliveryState
from app.services.common.context import Core

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Groundstation-Signature"
TIMESTAMP_HEADER = "X-Groundstation-Timestamp"
DELIVERY_HEADER = "X-Groundstation-Delivery"
EVENT_HEADER = "X-Groundstation-Event"
BATCH = 50
MAX_BACKOFF_SECONDS = 3600.0
ERROR_LIMIT = 500


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`v1=` + hex HMAC-SHA256 of `<timestamp>.<body>` under the webhook's secret."""
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "v1=" + digest.hexdigest()


def alert_document(alert: Alert) -> dict[str, Any]:
    """The alert as webhooks (and their receivers) see it."""
    def when(value: datetime | None) -> str | None:
        return None if value is None else value.isoformat().replace("+00:00", "Z")

    return {
        "id": alert.id, "rule": alert.rule, "subject": alert.subject,
        "severity": alert.severity.value, "state": alert.state.value,
        "summary": alert.summary, "team_id": alert.team_id,  # type: ignore[attr-defined]
        "satellite_id": alert.satellite_id,  # type: ignore[attr-defined]
        "installation_id": alert.installation_id, "occurrences": alert.occurrences,
        "opened_at": when(alert.opened_at), "resolved_at": when(alert.resolved_at),
        "details": alert.details,
    }


def _body(event: str, alert: Alert | None, at: datetime) -> str:
    document: dict[str, Any] = {"event": event, "at": at.isoformat().replace("+00:00", "Z")}
    if alert is not None:
        document["alert"] = alert_document(alert)
    return json.dumps(document, separators=(",", ":"), sort_keys=True)


async def queue_deliveries(rt: Core, alert: Alert, event: str) -> int:
    """One delivery per enabled webhook that hears of `alert`: its team's and the global
    ones. Call inside the transaction of the transition."""
    team_id = alert.team_id  # type: ignore[attr-defined]
    audience = Q(team_id__isnull=True) if team_id is None else (
        Q(team_id=team_id) | Q(team_id__isnull=True))
    webhooks = await Webhook.filter(audience, enabled=True).values_list("id", flat=True)
    if not webhooks:
        return 0
    now = rt.clock.now()
    body = _body(event, alert, now)
    await WebhookDelivery.bulk_create([
        WebhookDelivery(webhook_id=webhook_id, alert_id=alert.id, event=event, body=body,
                        next_attempt_at=now, created_at=now)
        for webhook_id in webhooks
    ])
    return len(webhooks)


async def queue_test(rt: Core, webhook: Webhook) -> WebhookDelivery:
    now = rt.clock.now()
    return await WebhookDelivery.create(webhook_id=webhook.id, event="webhook.test",
                                        body=_body("webhook.test", None, now),
                                        next_attempt_at=now, created_at=now)


# ---- where a webhook may point ----------------------------------------------------------

def checked_url(url: str) -> str:
    """An http(s) URL with a host, at most 2,048 characters (the address is checked when
    the webhook is created and again at every delivery, see `_refused_address`)."""
    url = url.strip()
    if len(url) > 2048:
        raise ValidationError("The webhook URL is longer than 2,048 characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("The webhook URL must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise ValidationError("The webhook URL must not carry credentials; the signature "
                              "authenticates the sender")
    return url


async def refused_address(url: str, allow_private: bool) -> str | None:
    """Why a delivery to `url` must not be attempted (None: go ahead): a name that does
    not resolve, or, unless `WEBHOOK_ALLOW_PRIVATE`, an address inside private,
    loopback or link-local space (no webhook reaches the server's own network)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port,
                                                             type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return f"the host {host!r} does not resolve"
    if allow_private:
        return None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            return (f"the host {host!r} resolves to {address}, a non-public address "
                    "(set GROUNDSTATION_WEBHOOK_ALLOW_PRIVATE=true to allow it)")
    return None


# ---- the delivery run -------------------------------------------------------------------

def backoff(rt: Core, attempts: int) -> timedelta:
    """Exponential in the attempts made, with ±20 % jitter so retries do not bunch."""
    base = rt.settings.webhook_retry_base_seconds * 2 ** max(0, attempts - 1)
    return timedelta(seconds=min(MAX_BACKOFF_SECONDS, base) * random.uniform(0.8, 1.2))  # noqa: S311


@dataclass
class DeliveryRun:
    attempted: int = 0
    disabled: list[Webhook] = field(default_factory=list)  # webhooks this run disabled


async def deliver_due(rt: Core, session: aiohttp.ClientSession) -> DeliveryRun:
    """Attempt every delivery that is due (up to `BATCH`)."""
    due = await WebhookDelivery.filter(
        state=DeliveryState.PENDING, next_attempt_at__lte=rt.clock.now(),
    ).order_by("next_attempt_at", "id").limit(BATCH).prefetch_related("webhook")
    disabled = await asyncio.gather(*(_attempt(rt, session, delivery) for delivery in due))
    return DeliveryRun(len(due), [webhook for webhook in disabled if webhook is not None])


async def _attempt(rt: Core, session: aiohttp.ClientSession,
                   delivery: WebhookDelivery) -> Webhook | None:
    """One attempt; the webhook when this attempt's failure disabled it."""
    webhook: Webhook = delivery.webhook
    if not webhook.enabled:
        await _finish(delivery, DeliveryState.FAILED, None, "the webhook is disabled")
        return None
    status, error = await _post(rt, session, webhook, delivery)
    delivery.attempts += 1
    if status is not None and 200 <= status < 300:
        await _finish(delivery, DeliveryState.DELIVERED, status, None, rt.clock.now())
        if webhook.consecutive_failures:
            await Webhook.filter(id=webhook.id).update(consecutive_failures=0)
        rt.metrics.webhook_deliveries.labels(outcome="delivered").inc()
        return None
    if delivery.attempts < rt.settings.webhook_max_attempts:
        delivery.next_attempt_at = rt.clock.now() + backoff(rt, delivery.attempts)
        await _finish(delivery, DeliveryState.PENDING, status, error)
        rt.metrics.webhook_deliveries.labels(outcome="retry").inc()
        return None
    await _finish(delivery, DeliveryState.FAILED, status, error)
    rt.metrics.webhook_deliveries.labels(outcome="failed").inc()
    log.warning("webhook delivery given up", extra={
        "op": "webhooks.failed", "webhook_id": webhook.id, "delivery_id": delivery.id,
        "attempts": delivery.attempts, "error": error})
    return webhook if await _count_failure(rt, webhook) else None


async def _post(rt: Core, session: aiohttp.ClientSession, webhook: Webhook,
                delivery: WebhookDelivery) -> tuple[int | None, str | None]:
    refused = await refused_address(webhook.url, rt.settings.webhook_allow_private)
    if refused is not None:
        return None, refused
    body = delivery.body.encode()
    timestamp = int(rt.clock.now().timestamp())
    secret = rt.secrets.decrypt(webhook.secret_sealed)
    headers = {"Content-Type": "application/json", "User-Agent": "groundstation-webhooks",
               TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign(secret, timestamp, body),
               DELIVERY_HEADER: str(delivery.id), EVENT_HEADER: delivery.event}
    timeout = aiohttp.ClientTimeout(total=rt.settings.webhook_timeout_seconds)
    try:
        async with session.post(webhook.url, data=body, headers=headers, timeout=timeout,
                                allow_redirects=False) as response:
            await response.content.read(4096)  # a little of the answer; the rest is dropped
            if 200 <= response.status < 300:
                return response.status, None
            return response.status, f"the receiver answered {response.status}"
    except (aiohttp.ClientError, TimeoutError, OSError) as error:
        return None, f"{type(error).__name__}: {error}"[:ERROR_LIMIT]


async def _finish(delivery: WebhookDelivery, state: DeliveryState, status: int | None,
                  error: str | None, delivered_at: datetime | None = None) -> None:
    await WebhookDelivery.filter(id=delivery.id).update(
        state=state, attempts=delivery.attempts, next_attempt_at=delivery.next_attempt_at,
        last_status=status, last_error=None if error is None else error[:ERROR_LIMIT],
        delivered_at=delivered_at)


async def _count_failure(rt: Core, webhook: Webhook) -> bool:
    """One more delivery given up; True when that disabled the webhook."""
    await Webhook.filter(id=webhook.id).update(consecutive_failures=F("consecutive_failures") + 1)
    row = await Webhook.get_or_none(id=webhook.id)
    if row is None or row.consecutive_failures < rt.settings.webhook_disable_after:
        return False
    reason = f"{row.consecutive_failures} deliveries in a row were given up"
    changed = await Webhook.filter(id=webhook.id, enabled=True).update(
        enabled=False, disabled_reason=reason)
    webhook.enabled, webhook.disabled_reason = False, reason
    return bool(changed)


__all__ = ["DELIVERY_HEADER", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "DeliveryRun",
           "alert_document", "backoff", "checked_url", "deliver_due", "queue_deliveries",
           "queue_test", "refused_address", "sign"]
