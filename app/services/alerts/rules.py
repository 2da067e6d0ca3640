"""The built-in alert rules, their defaults, and the settings people change (docs/alerts.md §1).

Each rule has global settings (its defaults until a global admin changes them) and
may have a per-team override, set by that team's admins. The effective settings of
a rule for a team are the team's override if there is one, else the global ones.
They are read from the database at most once per `CACHE_SECONDS` per instance, and
at once after a change made on this instance.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from app.errors import ValidationError
from app.models import AlertRuleSetting
from app.models.enums import AlertSeverity

GLOBAL_SCOPE = "global"
CACHE_SECONDS = 5.0


class AlertRule(StrEnum):
    SATELLITE_OFFLINE = "satellite_offline"
    SATELLITE_DEGRADED = "satellite_degraded"
    PROCESS_CRASH_LOOP = "process_crash_loop"
    PROCESS_FAILED = "process_failed"
    RESOURCE_HIGH = "resource_high"
    COMMAND_FAILED = "command_failed"
    AUTH_FAILURES = "auth_failures"
    CONFIG_ERROR = "config_error"
    TEAM_LIMIT_EXCEEDED = "team_limit_exceeded"
    CONFIG_STALE = "config_stale"
    WEBHOOK_DISABLED = "webhook_disabled"


@dataclass(frozen=True, slots=True)
class RuleSpec:
    rule: AlertRule
    severity: AlertSeverity
    description: str
    # Parameter name → default; every parameter is a positive number.
    defaults: dict[str, float] = field(default_factory=dict)


SPECS: dict[AlertRule, RuleSpec] = {spec.rule: spec for spec in (
    RuleSpec(AlertRule.SATELLITE_OFFLINE, AlertSeverity.CRITICAL,
             "A satellite sent no heartbeat for the offline threshold."),
    RuleSpec(AlertRule.SATELLITE_DEGRADED, AlertSeverity.WARNING,
             "A satellite reports itself degraded or in error."),
    RuleSpec(AlertRule.PROCESS_CRASH_LOOP, AlertSeverity.CRITICAL,
             "An MCP server process crashed `crashes` times within `window_seconds`.",
             {"crashes": 3, "window_seconds": 600}),
    RuleSpec(AlertRule.PROCESS_FAILED, AlertSeverity.CRITICAL,
             "An MCP server process failed permanently (the satellite stopped restarting it)."),
    RuleSpec(AlertRule.RESOURCE_HIGH, AlertSeverity.WARNING,
             "CPU, memory or disk above its threshold for `heartbeats` heartbeats in a row.",
             {"cpu_percent": 90, "memory_mb": 4096, "disk_percent": 90, "heartbeats": 3}),
    RuleSpec(AlertRule.COMMAND_FAILED, AlertSeverity.WARNING,
             "A command failed after all its attempts."),
    RuleSpec(AlertRule.AUTH_FAILURES, AlertSeverity.CRITICAL,
             "`failures` failed satellite authentications (or reported `security.auth.failed`) "
             "within `window_seconds`.", {"failures": 10, "window_seconds": 300}),
    RuleSpec(AlertRule.CONFIG_ERROR, AlertSeverity.WARNING,
             "A satellite reported an error applying its configuration (`config.error`)."),
    RuleSpec(AlertRule.TEAM_LIMIT_EXCEEDED, AlertSeverity.WARNING,
             "A satellite reported a team resource limit exceeded (`resource.limit.exceeded`)."),
    RuleSpec(AlertRule.CONFIG_STALE, AlertSeverity.WARNING,
             "A `configure` command was not acknowledged within `window_seconds`.",
             {"window_seconds": 600}),
    RuleSpec(AlertRule.WEBHOOK_DISABLED, AlertSeverity.CRITICAL,
             "A webhook was disabled after repeated failed deliveries."),
)}


@dataclass(frozen=True, slots=True)
class RuleSettings:
    rule: AlertRule
    enabled: bool
    params: dict[str, float]
    scope: str  # where these settings come from: `global` or the team's id


def parse_rule(value: str) -> AlertRule:
    try:
        return AlertRule(value)
    except ValueError:
        raise ValidationError(f"Unknown alert rule {value!r}; one of: "
                              f"{', '.join(rule.value for rule in AlertRule)}") from None


def checked_params(rule: AlertRule, params: dict[str, Any]) -> dict[str, float]:
    """`params` as the rule's numbers; unknown names and bad values are refused."""
    spec = SPECS[rule]
    unknown = sorted(set(params) - set(spec.defaults))
    if unknown:
        known = ", ".join(spec.defaults) or "none"
        raise ValidationError(f"Rule {rule.value} has no parameter {unknown[0]!r} "
                              f"(its parameters: {known})")
    checked: dict[str, float] = {}
    for name, value in params.items():
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or not 0 < value <= 1e9):
            raise ValidationError(f"Parameter {name!r} of {rule.value} must be a positive "
                                  "number")
        checked[name] = float(value)
    return checked


class RuleBook:
    """The effective settings of every rule, cached per instance."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], AlertRuleSetting] = {}
        self._loaded_at: float | None = None

    def forget(self) -> None:
        self._loaded_at = None

    async def _load(self) -> None:
        if self._loaded_at is not None and time.monotonic() - self._loaded_at < CACHE_SECONDS:
            return
        rows = await AlertRuleSetting.all()
        self._rows = {(row.rule, row.scope): row for row in rows}
        self._loaded_at = time.monotonic()

    async def settings(self, rule: AlertRule, team_id: str | None) -> RuleSettings:
        """Defaults, then the global settings, then the team's override on top."""
        await self._load()
        enabled, params, scope = True, dict(SPECS[rule].defaults), GLOBAL_SCOPE
        for layer in ((GLOBAL_SCOPE, team_id) if team_id else (GLOBAL_SCOPE,)):
            row = self._rows.get((rule.value, layer))
            if row is not None:
                enabled, scope = row.enabled, layer
                params.update(row.params)
        return RuleSettings(rule, enabled, params, scope)

    async def all_settings(self, team_id: str | None) -> list[RuleSettings]:
        return [await self.settings(rule, team_id) for rule in AlertRule]


__all__ = ["GLOBAL_SCOPE", "SPECS", "AlertRule", "RuleBook", "RuleSettings", "RuleSpec",
           "checked_params", "parse_rule"]
