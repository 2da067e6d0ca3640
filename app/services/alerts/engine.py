"""The rules at work (docs/alerts.md §1–2): bus messages in, alerts opened and resolved.

`handle` takes one message of the channels the service already publishes
(`satellite.status`, `satellite.events`, `command.updated`); `tick` runs with the
jobs: it looks at each heartbeat received since the last tick in the fleet in
memory (degraded, resources), resolves what went quiet, raises stale
configurations and squares the offline alerts with the fleet (for messages missed
during a leadership hand-over or a bus reconnect). Only the leader calls either, so every
alert is evaluated once; the unique open key covers the rest.

A heartbeat costs nothing here when it arrives; at the next tick a few comparisons.
Which alerts are open is kept in memory (`AlertMemory.open_keys`), so only a change
of condition touches the database.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from app.bus import Channels, Message
from app.models import Alert, Satellite
from app.models.enums import CommandStatus, CommandType, SatelliteStatus
from app.services.alerts.context import AlertsContext
from app.services.alerts.lifecycle import Finding, clear_alert, open_key, raise_alert
from app.services.alerts.rules import AlertRule

log = logging.getLogger(__name__)

CHANNELS = (Channels.SATELLITE_STATUS, Channels.SATELLITE_EVENTS, Channels.COMMAND_UPDATED,
            Channels.AUTH_FAILURE_BURST)
DEGRADED_STATES = frozenset({"degraded", "error"})


async def load_open_keys(rt: AlertsContext) -> None:
    """What is open, read once when this instance starts evaluating."""
    keys = await Alert.filter(open_key__isnull=False).values_list("open_key", flat=True)
    rt.alerts.open_keys = {str(key) for key in keys}
    rt.alerts.loaded = True


async def raise_finding(rt: AlertsContext, finding: Finding, *, again: bool = False) -> None:
    """Open `finding`'s alert unless it is open (`again`: count the occurrence anyway),
    when its rule is enabled for the team; from outside the engine's own passes."""
    async with rt.alerts.lock:
        await _raise(rt, finding, again=again)


async def clear_finding(rt: AlertsContext, rule: AlertRule, subject: str) -> None:
    """Resolve the open alert of (rule, subject), if there is one; from outside the
    engine's own passes, on any instance (so the rows decide, not this one's memory)."""
    async with rt.alerts.lock:
        rt.alerts.open_keys.discard(open_key(rule, subject))
        await clear_alert(rt, rule, subject)


async def _raise(rt: AlertsContext, finding: Finding, *, again: bool = False) -> None:
    key = finding.open_key
    if key in rt.alerts.open_keys and not again:
        return
    if not (await rt.alerts.rules.settings(finding.rule, finding.team_id)).enabled:
        return
    rt.alerts.open_keys.add(key)  # before the write: a tick meanwhile must not raise it too
    try:
        await raise_alert(rt, finding)
    except Exception:
        rt.alerts.open_keys.discard(key)
        raise


async def _clear(rt: AlertsContext, rule: AlertRule, subject: str) -> None:
    key = open_key(rule, subject)
    if key in rt.alerts.open_keys:
        rt.alerts.open_keys.discard(key)
        await clear_alert(rt, rule, subject)


async def handle(rt: AlertsContext, channel: str, message: Message) -> None:
    async with rt.alerts.lock:  # one pass at a time: see AlertMemory.lock
        await _handle(rt, channel, message)


async def _handle(rt: AlertsContext, channel: str, message: Message) -> None:
    if not rt.alerts.loaded:
        await load_open_keys(rt)
    match channel:
        case Channels.SATELLITE_STATUS:
            await _status(rt, message)
        case Channels.SATELLITE_EVENTS:
            await _event(rt, message)
        case Channels.COMMAND_UPDATED:
            await _command(rt, message)
        case Channels.AUTH_FAILURE_BURST:
            await _failure_burst(rt, message)


# ---- satellites ---------------------------------------------------------------------------

def _name(rt: AlertsContext, satellite_id: str) -> str:
    state = rt.fleet.get(satellite_id)
    return satellite_id if state is None else state.name


def _offline_finding(rt: AlertsContext, satellite_id: str, team_id: str | None) -> Finding:
    return Finding(AlertRule.SATELLITE_OFFLINE, satellite_id,
                   f"Satellite {_name(rt, satellite_id)} is offline: no heartbeat for "
                   f"{rt.settings.offline_threshold} s",
                   satellite_id=satellite_id, team_id=team_id)


async def _status(rt: AlertsContext, message: Message) -> None:
    satellite_id = str(message.get("satellite_id"))
    status = message.get("status")
    if status != SatelliteStatus.ACTIVE.value or message.get("online"):
        # Back online, or not expected to be online (maintenance, disabled, deleted).
        await _clear(rt, AlertRule.SATELLITE_OFFLINE, satellite_id)
        if status in (SatelliteStatus.DELETED.value, SatelliteStatus.DISABLED.value):
            await _clear(rt, AlertRule.SATELLITE_DEGRADED, satellite_id)
        return
    await _raise(rt, _offline_finding(rt, satellite_id, message.get("team_id")))


async def _heartbeats(rt: AlertsContext) -> None:
    """The heartbeat rules, from the fleet in memory: each satellite's latest report,
    looked at once per heartbeat received since the last pass (heartbeats come every
    30 s, passes every few seconds), so the heartbeat path itself does nothing here."""
    seen = rt.alerts.heartbeat_seen
    for state in rt.fleet.all():
        at = state.last_heartbeat_at
        if at is None or seen.get(state.id) == at:
            continue
        seen[state.id] = at
        await _reported(rt, state.id, state.team_id, state.reported_status)
        await _resources(rt, state.id, state.team_id, state.latest_metrics or {})


async def _reported(rt: AlertsContext, satellite_id: str, team_id: str | None,
                    reported: str | None) -> None:
    if reported in DEGRADED_STATES:
        await _raise(rt, Finding(
            AlertRule.SATELLITE_DEGRADED, satellite_id,
            f"Satellite {_name(rt, satellite_id)} reports itself {reported}",
            satellite_id=satellite_id, team_id=team_id, details={"reported_status": reported}))
    else:
        await _clear(rt, AlertRule.SATELLITE_DEGRADED, satellite_id)


async def _resources(rt: AlertsContext, satellite_id: str, team_id: str | None,
                     metrics: dict[str, Any]) -> None:
    settings = await rt.alerts.rules.settings(AlertRule.RESOURCE_HIGH, team_id)
    params = settings.params
    over = {name: value for name, value, limit in (
        ("cpu_usage_percent", metrics.get("cpu_usage_percent"), params["cpu_percent"]),
        ("memory_usage_mb", metrics.get("memory_usage_mb"), params["memory_mb"]),
        ("disk_usage_percent", metrics.get("disk_usage_percent"), params["disk_percent"]),
    ) if isinstance(value, int | float) and value > limit}
    counts = rt.alerts.over_threshold
    if not over:
        if counts.pop(satellite_id, None) is not None or (
                open_key(AlertRule.RESOURCE_HIGH, satellite_id) in rt.alerts.open_keys):
            await _clear(rt, AlertRule.RESOURCE_HIGH, satellite_id)
        return
    counts[satellite_id] = counts.get(satellite_id, 0) + 1
    if counts[satellite_id] >= params["heartbeats"]:
        names = ", ".join(f"{name} {value:g}" for name, value in over.items())
        await _raise(rt, Finding(
            AlertRule.RESOURCE_HIGH, satellite_id,
            f"Satellite {_name(rt, satellite_id)} over its thresholds for "
            f"{counts[satellite_id]} heartbeats: {names}",
            satellite_id=satellite_id, team_id=team_id, details=over))


# ---- events -------------------------------------------------------------------------------

def _text(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    return value if isinstance(value, str) and value else None


async def _event(rt: AlertsContext, message: Message) -> None:
    kind = message.get("type")
    raw = message.get("data")
    data: dict[str, Any] = raw if isinstance(raw, dict) else {}
    satellite_id = str(message.get("satellite_id"))
    team_id = message.get("team_id")
    installation = _text(data, "server_id") or _text(data, "installation_id")
    process = f"{satellite_id}:{installation or _text(data, 'server_slug') or '?'}"
    slug = _text(data, "server_slug") or installation or "a server"
    at = f"on {_name(rt, satellite_id)}"
    match kind:
        case "mcp.server.crashed":
            settings = await rt.alerts.rules.settings(AlertRule.PROCESS_CRASH_LOOP, team_id)
            window = settings.params["window_seconds"]
            key = open_key(AlertRule.PROCESS_CRASH_LOOP, process)
            crashes = rt.alerts.note(key, rt.clock.monotonic(), window)
            if crashes >= settings.params["crashes"]:
                await _raise(rt, Finding(
                    AlertRule.PROCESS_CRASH_LOOP, process,
                    f"{slug} crashed {crashes} times in {window:g} s {at}",
                    satellite_id=satellite_id, team_id=team_id, installation_id=installation,
                    details={"crashes_in_window": crashes,
                             "exit_code": data.get("exit_code")}), again=True)
        case "mcp.server.permanently_failed":
            await _raise(rt, Finding(
                AlertRule.PROCESS_FAILED, process,
                f"{slug} failed permanently {at}: {_text(data, 'last_error') or 'no error'}",
                satellite_id=satellite_id, team_id=team_id, installation_id=installation,
                details={"total_crashes": data.get("total_crashes")}))
        case "mcp.server.started" | "mcp.server.restarted" | "mcp.server.respawned":
            await _clear(rt, AlertRule.PROCESS_FAILED, process)
        case "config.error":
            await _raise(rt, Finding(
                AlertRule.CONFIG_ERROR, satellite_id,
                f"Satellite {_name(rt, satellite_id)} could not apply its configuration: "
                f"{_text(data, 'error_message') or _text(data, 'error_type') or 'error'}",
                satellite_id=satellite_id, team_id=team_id,
                details={"error_type": data.get("error_type"),
                         "status_code": data.get("status_code")}), again=True)
        case "config.refreshed":
            await _clear(rt, AlertRule.CONFIG_ERROR, satellite_id)
        case "security.auth.failed":
            await _auth_failure(rt, satellite_id, team_id, _text(data, "reason"))
        case "resource.limit.exceeded":
            resource = _text(data, "resource_type") or "resource"
            subject = f"{team_id}:{resource}"
            key = open_key(AlertRule.TEAM_LIMIT_EXCEEDED, subject)
            rt.alerts.note(key, rt.clock.monotonic(), 600.0)
            await _raise(rt, Finding(
                AlertRule.TEAM_LIMIT_EXCEEDED, subject,
                f"Team limit on {resource} exceeded {at}: {data.get('current_value')} of "
                f"{data.get('limit_value')}", satellite_id=satellite_id, team_id=team_id,
                details={"resource_type": resource, "current_value": data.get("current_value"),
                         "limit_value": data.get("limit_value")}), again=True)


async def _auth_failure(rt: AlertsContext, satellite_id: str, team_id: str | None,
                        reason: str | None) -> None:
    settings = await rt.alerts.rules.settings(AlertRule.AUTH_FAILURES, team_id)
    window = settings.params["window_seconds"]
    key = open_key(AlertRule.AUTH_FAILURES, satellite_id)
    failures = rt.alerts.note(key, rt.clock.monotonic(), window)
    if failures >= settings.params["failures"]:
        await _raise(rt, Finding(
            AlertRule.AUTH_FAILURES, satellite_id,
            f"{failures} failed client authentications in {window:g} s on "
            f"{_name(rt, satellite_id)}", satellite_id=satellite_id, team_id=team_id,
            details={"failures_in_window": failures, "last_reason": reason}))


async def _failure_burst(rt: AlertsContext, message: Message) -> None:
    """Failed satellite authentications from one address reached the limiter's burst
    (`GROUNDSTATION_AUTH_FAILURE_LIMIT` in its window): an alert for global admins."""
    address = str(message.get("address"))
    settings = await rt.alerts.rules.settings(AlertRule.AUTH_FAILURES, None)
    subject = f"address:{address}"
    rt.alerts.note(open_key(AlertRule.AUTH_FAILURES, subject), rt.clock.monotonic(),
                   settings.params["window_seconds"])
    await _raise(rt, Finding(
        AlertRule.AUTH_FAILURES, subject,
        f"A burst of failed satellite authentications from {address}",
        details={"address": address, "reason": message.get("reason")}), again=True)


# ---- commands -----------------------------------------------------------------------------

async def _command(rt: AlertsContext, message: Message) -> None:
    status = message.get("status")
    satellite_id = str(message.get("satellite_id"))
    command_type = str(message.get("command_type"))
    team_id = message.get("team_id")
    subject = f"{satellite_id}:{command_type}"
    if command_type == CommandType.CONFIGURE.value:
        _track_configure(rt, message)
    if status == CommandStatus.FAILED.value:
        await _raise(rt, Finding(
            AlertRule.COMMAND_FAILED, subject,
            f"A {command_type} command failed on {_name(rt, satellite_id)} after all attempts",
            satellite_id=satellite_id, team_id=team_id,
            details={"command_id": message.get("command_id")}), again=True)
    elif status == CommandStatus.COMPLETED.value:
        await _clear(rt, AlertRule.COMMAND_FAILED, subject)
        if command_type == CommandType.CONFIGURE.value:
            await _clear(rt, AlertRule.CONFIG_STALE, satellite_id)


def _track_configure(rt: AlertsContext, message: Message) -> None:
    command_id = str(message.get("command_id"))
    if message.get("status") == CommandStatus.PENDING.value:
        rt.alerts.configures.setdefault(command_id, (
            str(message.get("satellite_id")), message.get("team_id"), rt.clock.now()))
    else:  # acknowledged, executing or finished: no longer waiting
        rt.alerts.configures.pop(command_id, None)


# ---- periodic -----------------------------------------------------------------------------

async def tick(rt: AlertsContext, *, in_grace: bool) -> None:
    """Resolve what went quiet, raise stale configurations, square offline alerts with
    the fleet in memory (`in_grace`: just started, offline is not judged yet)."""
    async with rt.alerts.lock:  # one pass at a time: see AlertMemory.lock
        await _tick(rt, in_grace=in_grace)


async def _tick(rt: AlertsContext, *, in_grace: bool) -> None:
    if not rt.alerts.loaded:
        await load_open_keys(rt)
    for key in rt.alerts.quiet(rt.clock.monotonic()):
        rule, _, subject = key.partition("|")
        await _clear(rt, AlertRule(rule), subject)
    await _stale_configures(rt)
    await _heartbeats(rt)
    if not in_grace:
        await _square_offline(rt)


async def _stale_configures(rt: AlertsContext) -> None:
    now = rt.clock.now()
    for command_id, (satellite_id, team_id, queued) in list(rt.alerts.configures.items()):
        settings = await rt.alerts.rules.settings(AlertRule.CONFIG_STALE, team_id)
        waited = now - queued
        if waited < timedelta(seconds=settings.params["window_seconds"]):
            continue
        del rt.alerts.configures[command_id]
        await _raise(rt, Finding(
            AlertRule.CONFIG_STALE, satellite_id,
            f"Satellite {_name(rt, satellite_id)} has not acknowledged a configuration "
            f"change for {int(waited.total_seconds())} s", satellite_id=satellite_id,
            team_id=team_id, details={"command_id": command_id}))


async def _square_offline(rt: AlertsContext) -> None:
    """Offline alerts as the fleet in memory has it, checked against the rows: heartbeats
    another instance received reach this one's memory only with its next refresh."""
    prefix = AlertRule.SATELLITE_OFFLINE.value + "|"
    open_offline = {key[len(prefix):] for key in rt.alerts.open_keys if key.startswith(prefix)}
    to_raise: dict[str, str | None] = {}
    to_clear: set[str] = set()
    for state in rt.fleet.all():
        expected = state.status is SatelliteStatus.ACTIVE
        if expected and not state.online and state.id not in open_offline:
            to_raise[state.id] = state.team_id
        elif state.id in open_offline and (state.online or not expected):
            to_clear.add(state.id)
    doubtful = sorted(set(to_raise) | (open_offline - to_clear))
    if doubtful:
        cutoff = rt.clock.now() - timedelta(seconds=rt.settings.offline_threshold)
        recent = await Satellite.filter(id__in=doubtful, last_heartbeat_at__gte=cutoff
                                        ).values_list("id", flat=True)
        for satellite_id in map(str, recent):
            to_raise.pop(satellite_id, None)
            if satellite_id in open_offline:
                to_clear.add(satellite_id)
    for satellite_id in sorted(to_clear):
        await _clear(rt, AlertRule.SATELLITE_OFFLINE, satellite_id)
    for satellite_id, team_id in to_raise.items():
        await _raise(rt, _offline_finding(rt, satellite_id, team_id))


__all__ = ["CHANNELS", "clear_finding", "handle", "load_open_keys", "raise_finding", "tick"]
