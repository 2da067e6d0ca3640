"""The alert engine's loops (docs/alerts.md §2, §4): bus messages to the rules, and the
webhook delivery run. Both act only while this instance leads the jobs; the periodic
part (`tick`) is a scheduled job like the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiohttp

from app.bus import DROPPED
from app.jobs.leader import Leadership
from app.jobs.offline import in_start_up_grace
from app.services.alerts import engine
from app.services.alerts.delivery import BATCH, deliver_due
from app.services.alerts.lifecycle import Finding
from app.services.alerts.rules import AlertRule
from app.services.context import Services

log = logging.getLogger(__name__)


async def run_tick(rt: Services) -> None:
    await engine.tick(rt, in_grace=in_start_up_grace(rt))


async def follow_bus(rt: Services, leadership: Leadership) -> None:
    """Every message of the rules' channels to `engine.handle`, on the leader; a drop
    (this consumer fell behind, or the bus reconnected) re-reads what is open."""
    while not rt.shutting_down.is_set():
        source = rt.bus.subscribe(engine.CHANNELS)
        try:
            async for channel, message in source:
                if channel not in engine.CHANNELS and message.get("type") == DROPPED["type"]:
                    log.warning("alert engine fell behind the bus; re-reading open alerts",
                                extra={"op": "alerts.resync"})
                    rt.alerts.loaded = False
                    break
                if not leadership.is_leader:
                    rt.alerts.loaded = False  # read again when this instance leads
                    continue
                try:
                    await engine.handle(rt, channel, message)
                except Exception:
                    log.exception("alert rule failed", extra={"op": "alerts.handle",
                                                              "channel": channel})
        finally:
            with contextlib.suppress(Exception):
                await source.aclose()  # type: ignore[attr-defined]
        if not rt.shutting_down.is_set():
            await asyncio.sleep(0.1)


async def deliver(rt: Services, leadership: Leadership) -> None:
    """Send due webhook deliveries: at once when one is queued on this instance, else
    every `WEBHOOK_INTERVAL_SECONDS` (deliveries queued elsewhere, retries)."""
    async with aiohttp.ClientSession() as session:
        while not rt.shutting_down.is_set():
            await _until_due(rt)
            if not leadership.is_leader or rt.shutting_down.is_set():
                continue
            try:
                while True:
                    run = await deliver_due(rt, session)
                    for webhook in run.disabled:
                        await engine.raise_finding(rt, Finding(
                            AlertRule.WEBHOOK_DISABLED, webhook.id,
                            f"Webhook {webhook.url} was disabled: {webhook.disabled_reason}",
                            team_id=webhook.team_id,  # type: ignore[attr-defined]
                            details={"url": webhook.url}))
                    if run.attempted < BATCH:
                        break
            except Exception:
                log.exception("webhook delivery run failed", extra={"op": "webhooks.run"})


async def _until_due(rt: Services) -> None:
    """Until a delivery is queued here, the interval passes, or the server stops."""
    due = rt.alerts.deliveries_due
    waiters = [asyncio.ensure_future(due.wait()), asyncio.ensure_future(rt.shutting_down.wait())]
    try:
        await asyncio.wait(waiters, timeout=rt.settings.webhook_interval_seconds,
                           return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    due.clear()


def start_alerts(rt: Services, leadership: Leadership) -> None:
    rt.tasks.start(follow_bus(rt, leadership), name="alerts-bus")
    rt.tasks.start(deliver(rt, leadership), name="webhook-deliveries")
