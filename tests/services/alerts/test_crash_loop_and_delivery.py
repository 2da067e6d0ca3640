"""A crash-looping process opens one alert, not one per crash; a webhook receiver that
fails three times and then recovers gets the delivery exactly once, even with a server
restart between the retries (docs/alerts.md §2, §4)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from app.models import Alert, WebhookDelivery
from app.models.enums import DeliveryState, SatelliteType
from app.services.alerts.webhooks import create_webhook
from app.services.common.actors import CLI_ACTOR
from app.services.people.principals import CLI_PRINCIPAL
from app.services.people.teams import create_team
from tests.fixtures.alerts import verified
from tests.fixtures.satellites import TestSatellite, satellite_factory
from tests.fixtures.server import eventually, make_settings, running
from tests.fixtures.webhooks import Receiver

CRASHES = 5  # the rule's default: 3 in 10 minutes


def crash(installation_id: str, team_id: str, count: int) -> dict[str, object]:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {"type": "mcp.server.crashed", "timestamp": now, "data": {
        "server_id": installation_id, "server_slug": "files", "team_id": team_id,
        "process_id": 100 + count, "exit_code": 1, "signal": None, "uptime_seconds": 2,
        "crash_count": count, "will_restart": True}}


async def post_crashes(http: aiohttp.ClientSession, satellite: TestSatellite, team_id: str
                       ) -> None:
    for count in range(1, CRASHES + 1):  # one batch per crash, as a satellite reports them
        async with http.post(satellite.path("events"), json={
                "events": [crash("inst-files", team_id, count)]},
                headers=satellite.headers) as response:
            assert response.status == 200, await response.text()


async def test_a_crash_loop_is_one_alert_delivered_once_across_failures_and_a_restart(
    tmp_path: Path, receiver: Receiver,
) -> None:
    # Retries 0.3 s, 0.6 s, 1.2 s apart: the restart fits between two of them.
    settings = make_settings(tmp_path, webhook_retry_base_seconds=0.3)
    receiver.failures_left = 3

    async with running(settings) as (rt, http):
        team = await create_team(rt, name="Ops", slug="ops", admin_email=None,
                                 actor=CLI_ACTOR)
        satellite = await satellite_factory(rt)(satellite_type=SatelliteType.TEAM,
                                                team_id=team.id)
        created = await create_webhook(rt, CLI_PRINCIPAL, team_id=None, url=receiver.url)
        await post_crashes(http, satellite, team.id)

        async def first_refusal() -> bool:
            return len(receiver.refused) >= 1

        await eventually(first_refusal)
        assert receiver.delivered == []
        assert len(receiver.refused) < 3
    # Stopped between two attempts: the delivery waits in the database for the next server.

    async with running(settings) as (rt, _):
        document = verified(await receiver.next(), created.secret)
        await asyncio.sleep(1.0)  # long enough for a duplicate to show up, if one would

        assert len(receiver.refused) == 3
        assert len(receiver.delivered) == 1  # exactly once after the retries
        assert document["event"] == "alert.opened"
        assert document["alert"]["rule"] == "process_crash_loop"
        assert document["alert"]["installation_id"] == "inst-files"

        alerts = await Alert.filter(rule="process_crash_loop")
        assert len(alerts) == 1  # one alert for the loop, not one per crash
        # Opened at the third crash; the fourth and fifth count as occurrences.
        assert alerts[0].occurrences == CRASHES - 2
        deliveries = await WebhookDelivery.filter(alert_id=alerts[0].id)
        assert [(d.state, d.attempts) for d in deliveries] == [(DeliveryState.DELIVERED, 4)]
        assert receiver.delivered[0].headers["X-Groundstation-Delivery"] == str(deliveries[0].id)

