"""An alert's life: opened by a rule, seen again, resolved when its condition clears,
acknowledged or silenced by people (docs/alerts.md §2).

There is one open alert per (rule, subject): `alerts.open_key` is unique and set
only while the alert is not resolved, so two instances (or two messages) raising
the same alert at once make one row, and the loser counts an occurrence instead.
Every transition is audited, published on `alert.changed` and, unless the alert is
silenced, queued for the webhooks that should hear of it, in the transaction that
made the transition (a crash after it loses no notification).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from app.bus import Channels
from app.errors import NotFound, ValidationError
from app.models import Alert
from app.models.enums import AlertSeverity, AlertState
from app.services.alerts.context import AlertsContext
from app.services.alerts.delivery import queue_deliveries
from app.services.alerts.rules import SPECS, AlertRule
from app.services.common.actors import SYSTEM_ACTOR, Actor
from app.services.common.audit import record_audit
from app.services.people.permissions import require_team_admin
from app.services.people.principals import Principal
from app.services.people.reads import alert as read_alert

log = logging.getLogger(__name__)

SUMMARY_LIMIT = 500


@dataclass(frozen=True, slots=True)
class Finding:
    """What a rule found about one subject."""

    rule: AlertRule
    subject: str
    summary: str
    satellite_id: str | None = None
    team_id: str | None = None
    installation_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    severity: AlertSeverity | None = None

    @property
    def open_key(self) -> str:
        return open_key(self.rule, self.subject)


def open_key(rule: AlertRule, subject: str) -> str:
    return f"{rule.value}|{subject}"


def alert_message(alert: Alert, transition: str) -> dict[str, Any]:
    return {"alert_id": alert.id, "team_id": alert.team_id,  # type: ignore[attr-defined]
            "satellite_id": alert.satellite_id,  # type: ignore[attr-defined]
            "rule": alert.rule, "state": alert.state.value, "transition": transition}


async def _announce(rt: AlertsContext, alert: Alert, transition: str, actor: Actor) -> None:
    await record_audit(f"alert.{transition}", actor=actor, object_type="alert",
                       object_id=alert.id, team_id=alert.team_id,  # type: ignore[attr-defined]
                       details={"rule": alert.rule, "subject": alert.subject})
    await rt.bus.publish(Channels.ALERT_CHANGED, alert_message(alert, transition))
    rt.metrics.alert_transitions.labels(rule=alert.rule, transition=transition).inc()


def _silenced(alert: Alert, now: datetime) -> bool:
    return alert.silenced_until is not None and alert.silenced_until > now


async def raise_alert(rt: AlertsContext, finding: Finding) -> Alert | None:
    """Open the alert for `finding`, or count one more occurrence of the open one. The
    alert when this call opened it. Whether the rule is enabled is the engine's check
    (`engine.raise_finding`)."""
    now = rt.clock.now()
    key = finding.open_key
    if await _seen_again(key, now, finding.details):
        return None
    try:
        async with in_transaction():
            alert = await Alert.create(
                rule=finding.rule.value, subject=finding.subject[:255], open_key=key,
                satellite_id=finding.satellite_id, team_id=finding.team_id,
                installation_id=finding.installation_id,
                severity=finding.severity or SPECS[finding.rule].severity,
                summary=finding.summary[:SUMMARY_LIMIT], details=finding.details,
                opened_at=now, last_seen_at=now,
            )
            await queue_deliveries(rt, alert, "alert.opened")
    except IntegrityError:  # opened meanwhile (another instance, another message)
        await _seen_again(key, now, finding.details)
        return None
    await _announce(rt, alert, "opened", SYSTEM_ACTOR)
    log.info("alert opened", extra={"op": "alerts.opened", "alert_id": alert.id,
                                    "rule": alert.rule, "subject": alert.subject})
    return alert


async def _seen_again(key: str, now: datetime, details: dict[str, Any]) -> bool:
    changed = await Alert.filter(open_key=key).update(
        occurrences=F("occurrences") + 1, last_seen_at=now, details=details)
    return bool(changed)


async def clear_alert(rt: AlertsContext, rule: AlertRule, subject: str) -> Alert | None:
    """Resolve the open alert of (rule, subject), if any: its condition cleared."""
    key = open_key(rule, subject)
    alert = await Alert.get_or_none(open_key=key)
    if alert is None:
        return None
    now = rt.clock.now()
    async with in_transaction():
        changed = await Alert.filter(id=alert.id, open_key=key).update(
            state=AlertState.RESOLVED, open_key=None, resolved_at=now)
        if not changed:
            return None  # resolved meanwhile
        alert.state, alert.open_key, alert.resolved_at = AlertState.RESOLVED, None, now
        if not _silenced(alert, now):
            await queue_deliveries(rt, alert, "alert.resolved")
    await _announce(rt, alert, "resolved", SYSTEM_ACTOR)
    log.info("alert resolved", extra={"op": "alerts.resolved", "alert_id": alert.id,
                                      "rule": alert.rule, "subject": alert.subject})
    return alert


async def open_subjects(rule: AlertRule) -> list[str]:
    """Subjects with an open (or acknowledged) alert of `rule`."""
    rows = await Alert.filter(rule=rule.value, open_key__isnull=False).values_list(
        "subject", flat=True)
    return [str(subject) for subject in rows]


# ---- people ---------------------------------------------------------------------------

async def _changeable(principal: Principal, alert_id: str) -> Alert:
    alert = await read_alert(principal, alert_id)
    if alert is None:
        raise NotFound("No such alert")
    if alert.team_id is not None:  # type: ignore[attr-defined]
        await require_team_admin(principal, alert.team_id)  # type: ignore[attr-defined]
    elif not principal.is_global_admin:
        raise NotFound("No such alert")
    if alert.state is AlertState.RESOLVED:
        raise ValidationError("The alert is resolved already", code="alert_resolved")
    return alert


async def acknowledge_alert(rt: AlertsContext, principal: Principal, alert_id: str) -> Alert:
    """Someone is on it: the alert stays until its condition clears, without new
    notifications for further occurrences."""
    alert = await _changeable(principal, alert_id)
    now = rt.clock.now()
    await Alert.filter(id=alert.id).update(state=AlertState.ACKNOWLEDGED, acknowledged_at=now,
                                           acknowledged_by_id=principal.user_id)
    alert.state, alert.acknowledged_at = AlertState.ACKNOWLEDGED, now
    alert.acknowledged_by_id = principal.user_id
    await _announce(rt, alert, "acknowledged", principal.actor)
    return alert


async def silence_alert(rt: AlertsContext, principal: Principal, alert_id: str,
                        until: datetime | None) -> Alert:
    """No notifications for the alert until `until` (None: silence lifted)."""
    alert = await _changeable(principal, alert_id)
    if until is not None and until <= rt.clock.now():
        raise ValidationError("`until` must be in the future")
    await Alert.filter(id=alert.id).update(silenced_until=until)
    alert.silenced_until = until
    await _announce(rt, alert, "silenced" if until else "unsilenced", principal.actor)
    return alert


__all__ = ["Finding", "acknowledge_alert", "alert_message", "clear_alert", "open_key",
           "open_subjects", "raise_alert", "silence_alert"]
