"""The heartbeat rules (docs/alerts.md §1): a satellite reporting itself degraded, and
resources over a threshold for some heartbeats in a row, seen by the periodic pass."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from app.models import Alert
from app.models.enums import AlertState, SatelliteType
from app.runtime import Runtime
from app.services.alerts import engine
from app.services.alerts.rules import AlertRule
from app.services.alerts.settings import set_rule_settings
from app.services.people.principals import CLI_PRINCIPAL
from tests.fixtures.people import TeamFactory
from tests.fixtures.satellites import SatelliteFactory, TestSatellite


async def beat(http: aiohttp.ClientSession, satellite: TestSatellite, status: str = "active",
               cpu: float = 10.0) -> None:
    body: dict[str, Any] = {"status": status, "system_metrics": {
        "cpu_usage_percent": cpu, "memory_usage_mb": 256}}
    async with http.post(satellite.path("heartbeat"), data=json.dumps(body),
                         headers=satellite.headers) as response:
        assert response.status == 200


async def states(satellite: TestSatellite, rule: str) -> list[AlertState]:
    return [row.state for row in await Alert.filter(satellite_id=satellite.id, rule=rule)
            .order_by("opened_at")]


async def test_a_degraded_report_opens_an_alert_and_a_healthy_one_resolves_it(
    rt: Runtime, http: aiohttp.ClientSession, make_satellite: SatelliteFactory,
) -> None:
    satellite = await make_satellite()
    await beat(http, satellite, status="degraded")
    await engine.tick(rt, in_grace=True)
    await beat(http, satellite, status="degraded")
    await engine.tick(rt, in_grace=True)
    assert await states(satellite, "satellite_degraded") == [AlertState.OPEN]  # not twice
    await beat(http, satellite, status="active")
    await engine.tick(rt, in_grace=True)
    assert await states(satellite, "satellite_degraded") == [AlertState.RESOLVED]


async def test_resources_open_an_alert_after_the_set_number_of_heartbeats_in_a_row(
    rt: Runtime, http: aiohttp.ClientSession, make_team: TeamFactory,
    make_satellite: SatelliteFactory,
) -> None:
    team = await make_team()
    satellite = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=team.id)
    await set_rule_settings(rt, CLI_PRINCIPAL, AlertRule.RESOURCE_HIGH, team_id=team.id,
                            params={"cpu_percent": 80, "heartbeats": 3})
    for cpu in (95.0, 97.0, 50.0, 91.0, 92.0):  # interrupted: the count starts again
        await beat(http, satellite, cpu=cpu)
        await engine.tick(rt, in_grace=True)
    assert await states(satellite, "resource_high") == []
    await beat(http, satellite, cpu=99.0)  # the third in a row
    await engine.tick(rt, in_grace=True)
    [alert] = await Alert.filter(satellite_id=satellite.id, rule="resource_high")
    assert alert.team_id == team.id  # type: ignore[attr-defined]
    assert alert.details == {"cpu_usage_percent": 99.0}
    await beat(http, satellite, cpu=20.0)
    await engine.tick(rt, in_grace=True)
    assert await states(satellite, "resource_high") == [AlertState.RESOLVED]
