"""Failed satellite authentications (docs/alerts.md §1): a burst from one address opens
one `auth_failures` alert, for global administrators."""

from __future__ import annotations

from pathlib import Path

from app.models import Alert
from tests.fixtures.satellites import satellite_factory
from tests.fixtures.server import eventually, make_settings, running

WRONG_KEY = "deploystack_satellite_global_" + "x" * 32


async def test_a_burst_of_refused_keys_opens_one_alert(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, auth_failure_limit=3)
    async with running(settings) as (rt, http):
        satellite = await satellite_factory(rt)()
        for _ in range(6):  # past the limit: the burst is announced once
            async with http.post(satellite.path("heartbeat"), json={},
                                 headers={"Authorization": f"Bearer {WRONG_KEY}"}) as answer:
                assert answer.status in (401, 429)

        async def raised() -> bool:
            return await Alert.exists(rule="auth_failures")

        await eventually(raised)
        [alert] = await Alert.filter(rule="auth_failures")
        assert alert.subject == "address:127.0.0.1"
        assert alert.team_id is None  # type: ignore[attr-defined]
        assert alert.details["address"] == "127.0.0.1"
