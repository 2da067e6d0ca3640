"""A satellite that stops sending heartbeats opens an `offline` alert, seen live by its
team and delivered to its team's webhook; its next heartbeat resolves it; another
team sees none of it (docs/alerts.md)."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from app.config import Settings
from app.models import Alert, AuditEntry
from app.models.enums import AlertState, SatelliteType, TeamRole
from app.runtime import Runtime
from app.services.common.clock import ManualClock
from tests.fixtures.alerts import ALERT_CHANGED, create_webhook, verified
from tests.fixtures.graphql import ClientFactory
from tests.fixtures.live import heartbeat as beat
from tests.fixtures.live import subscribed
from tests.fixtures.offline import end_start_up_grace
from tests.fixtures.offline import pass_threshold as pass_offline_threshold
from tests.fixtures.people import TeamFactory
from tests.fixtures.satellites import SatelliteFactory
from tests.fixtures.server import make_settings
from tests.fixtures.webhooks import Receiver

ALERTS = """query($state: [AlertState!]) { alerts(state: $state) {
  totalCount edges { node { id rule state satelliteId } } } }"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # The scheduled offline job runs every 0.1 s on the runtime's clock, which stands
    # still until the test moves it past the threshold.
    return make_settings(tmp_path, heartbeat_interval=1, offline_threshold=1,
                         jobs_interval_seconds=0.1)


async def test_silence_opens_an_offline_alert_that_the_next_heartbeat_resolves(
    rt: Runtime, http: aiohttp.ClientSession, clock: ManualClock, graphql_as: ClientFactory,
    make_team: TeamFactory, make_satellite: SatelliteFactory, receiver: Receiver,
) -> None:
    end_start_up_grace(rt)
    team_a, team_b = await make_team(), await make_team()
    # Inactive until their first heartbeat, as registered satellites are: an active one
    # that never sent one would be offline at once, and that alert's resolution (after
    # the first heartbeat, asynchronously) could reach the subscriptions below.
    ours = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=team_a.id,
                                active=False)
    theirs = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=team_b.id,
                                  active=False)
    admin_a = await graphql_as(teams={team_a.id: TeamRole.TEAM_ADMIN})
    member_b = await graphql_as(teams={team_b.id: TeamRole.TEAM_USER})
    _, secret = await create_webhook(admin_a, receiver.url, team_a.id)
    for satellite in (ours, theirs):
        await beat(http, satellite)

    async with subscribed(rt, http, admin_a.session_token, ALERT_CHANGED) as seen_by_a, \
            subscribed(rt, http, member_b.session_token, ALERT_CHANGED) as seen_by_b:
        pass_offline_threshold(clock, rt)  # both fall silent; B's comes back at once
        await beat(http, theirs)
        opened = (await seen_by_a.next())["alertChanged"]
        delivered = verified(await receiver.next(), secret)

        await beat(http, ours)
        resolved = (await seen_by_a.next())["alertChanged"]
        delivered_resolution = verified(await receiver.next(), secret)

        # Both fall silent again, after all of A's messages: B's first is its own.
        pass_offline_threshold(clock, rt)
        first_for_b = (await seen_by_b.next())["alertChanged"]
        opened_again = (await seen_by_a.next())["alertChanged"]
        await receiver.next()

    assert opened["transition"] == "opened"
    assert (opened["alert"]["rule"], opened["alert"]["state"]) == ("SATELLITE_OFFLINE", "OPEN")
    assert opened["alert"]["satelliteId"] == ours.id
    assert opened["alert"]["teamId"] == team_a.id
    assert delivered["event"] == "alert.opened"
    assert delivered["alert"]["id"] == opened["alert"]["id"]
    assert delivered["alert"]["satellite_id"] == ours.id

    assert resolved["transition"] == "resolved"
    assert resolved["alert"]["id"] == opened["alert"]["id"]
    assert resolved["alert"]["state"] == "RESOLVED"
    assert delivered_resolution["event"] == "alert.resolved"

    assert first_for_b["alert"]["satelliteId"] == theirs.id
    # B never saw A's alert: not live (above), not in a query, not by its id.
    listed = await member_b.data(ALERTS)
    assert {edge["node"]["satelliteId"] for edge in listed["alerts"]["edges"]} == {theirs.id}
    found = await member_b.data("query($id: ID!) { alert(id: $id) { id } }",
                                {"id": opened["alert"]["id"]})
    assert found["alert"] is None
    # A's webhook heard of A's satellite only, each transition once.
    assert [(document["event"], document["alert"]["satellite_id"]) for document in (
        verified(item, secret) for item in receiver.delivered)] == [
        ("alert.opened", ours.id), ("alert.resolved", ours.id), ("alert.opened", ours.id)]
    assert opened_again["alert"]["id"] != opened["alert"]["id"]  # a new alert, not reopened

    rows = await Alert.filter(satellite_id=ours.id).order_by("opened_at")
    assert [row.state for row in rows] == [AlertState.RESOLVED, AlertState.OPEN]  # opened again
    actions = await AuditEntry.filter(object_id=rows[0].id).values_list("action", flat=True)
    assert sorted(actions) == ["alert.opened", "alert.resolved"]
