"""Changing a rule's settings (docs/alerts.md §1): global ones by global admins, a
team's override by the team's admins; `reset` removes the override."""

from __future__ import annotations

from typing import Any

from app.models import AlertRuleSetting
from app.services.alerts.context import AlertsContext
from app.services.alerts.rules import GLOBAL_SCOPE, AlertRule, RuleSettings, checked_params
from app.services.common.audit import record_audit
from app.services.people import reads
from app.services.people.permissions import require_global_admin, require_team_admin
from app.services.people.principals import Principal


async def rule_settings(rt: AlertsContext, principal: Principal,
                        team_id: str | None) -> list[RuleSettings]:
    """Every rule's effective settings for a team the caller belongs to (or, without a
    team, the global ones)."""
    if team_id is not None:
        await reads.require_team(principal, team_id)
    return await rt.alerts.rules.all_settings(team_id)


async def set_rule_settings(rt: AlertsContext, principal: Principal, rule: AlertRule, *,
                            team_id: str | None, enabled: bool | None = None,
                            params: dict[str, Any] | None = None,
                            reset: bool = False) -> RuleSettings:
    if team_id is None:
        require_global_admin(principal)
    else:
        await require_team_admin(principal, team_id)
    scope = team_id or GLOBAL_SCOPE
    if reset:
        await AlertRuleSetting.filter(rule=rule.value, scope=scope).delete()
    else:
        current = await rt.alerts.rules.settings(rule, team_id)
        changes = checked_params(rule, params or {})
        row, _ = await AlertRuleSetting.get_or_create(
            rule=rule.value, scope=scope,
            defaults={"enabled": current.enabled, "params": {}})
        if enabled is not None:
            row.enabled = enabled
        row.params = {**row.params, **changes}
        await row.save()
    await record_audit("alert_rule.changed", actor=principal.actor, object_type="alert_rule",
                       object_id=rule.value, team_id=team_id,
                       details={"enabled": enabled, "params": params or {}, "reset": reset})
    rt.alerts.rules.forget()
    return await rt.alerts.rules.settings(rule, team_id)
