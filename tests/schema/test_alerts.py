"""Alerts and webhooks through GraphQL (docs/alerts.md): who may change what, rule
settings, silencing, and webhooks that refuse inward addresses or fail until disabled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from app.models import Alert, Webhook
from app.models.enums import GlobalRole, SatelliteType, TeamRole
from app.runtime import Runtime
from app.services.common.actors import CLI_ACTOR
from app.services.people.users import create_user
from tests.fixtures.alerts import create_webhook, verified
from tests.fixtures.graphql import ClientFactory, GraphQLClient, log_in
from tests.fixtures.people import PASSWORD, TeamFactory
from tests.fixtures.satellites import SatelliteFactory, TestSatellite
from tests.fixtures.server import eventually, make_settings, running
from tests.fixtures.webhooks import Receiver

TS = "2026-01-02T03:04:05Z"
SET_RULE = """mutation($rule: AlertRule!, $teamId: ID, $enabled: Boolean, $params: JSON,
                       $reset: Boolean! = false) {
  setAlertRule(rule: $rule, teamId: $teamId, enabled: $enabled, params: $params, reset: $reset)
  { rule enabled params teamId } }"""


async def config_error(http: aiohttp.ClientSession, satellite: TestSatellite) -> None:
    body = {"events": [{"type": "config.error", "timestamp": TS, "data": {
        "error_type": "auth", "error_message": "401 from the backend"}}]}
    async with http.post(satellite.path("events"), json=body,
                         headers=satellite.headers) as response:
        assert response.status == 200, await response.text()


async def alert_of(satellite: TestSatellite, rule: str = "config_error") -> Alert:
    async def raised() -> bool:
        return await Alert.filter(satellite_id=satellite.id, rule=rule).exists()

    await eventually(raised)
    return await Alert.get(satellite_id=satellite.id, rule=rule)


@pytest.fixture
async def team_setup(graphql_as: ClientFactory, make_team: TeamFactory,
                     make_satellite: SatelliteFactory
                     ) -> tuple[str, TestSatellite, GraphQLClient, GraphQLClient]:
    team = await make_team()
    satellite = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=team.id)
    admin = await graphql_as(teams={team.id: TeamRole.TEAM_ADMIN})
    user = await graphql_as(teams={team.id: TeamRole.TEAM_USER})
    return team.id, satellite, admin, user


async def test_team_admins_acknowledge_and_silence_team_users_may_only_look(
    http: aiohttp.ClientSession, team_setup: tuple[str, TestSatellite, GraphQLClient,
                                                   GraphQLClient],
) -> None:
    _, satellite, admin, user = team_setup
    await config_error(http, satellite)
    alert = await alert_of(satellite)
    acknowledge = "mutation($id: ID!) { acknowledgeAlert(id: $id) { state acknowledgedById } }"
    silence = "mutation($id: ID!, $until: DateTime) { silenceAlert(id: $id, until: $until) { " \
              "silencedUntil } }"
    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()

    assert await user.error_code(acknowledge, {"id": alert.id}) == "FORBIDDEN"
    seen = await user.data("query($id: ID!) { alert(id: $id) { state summary } }",
                           {"id": alert.id})
    assert seen["alert"]["state"] == "OPEN"
    assert "401 from the backend" in seen["alert"]["summary"]

    acknowledged = await admin.data(acknowledge, {"id": alert.id})
    assert acknowledged["acknowledgeAlert"] == {"state": "ACKNOWLEDGED",
                                                "acknowledgedById": admin.user_id}
    silenced = await admin.data(silence, {"id": alert.id, "until": until})
    assert silenced["silenceAlert"]["silencedUntil"] is not None
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    assert await admin.error_code(silence, {"id": alert.id, "until": past}) == "VALIDATION"


async def test_a_team_override_disables_a_rule_for_that_team_only(
    http: aiohttp.ClientSession, graphql_as: ClientFactory, make_team: TeamFactory,
    make_satellite: SatelliteFactory,
) -> None:
    quiet, loud = await make_team(), await make_team()
    admin = await graphql_as(teams={quiet.id: TeamRole.TEAM_ADMIN})
    ours = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=quiet.id)
    theirs = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=loud.id)

    changed = await admin.data(SET_RULE, {"rule": "CONFIG_ERROR", "teamId": quiet.id,
                                          "enabled": False})
    assert changed["setAlertRule"] == {"rule": "CONFIG_ERROR", "enabled": False,
                                       "params": {}, "teamId": quiet.id}
    # The team's admin may not change another team's rules, nor the global ones.
    assert await admin.error_code(SET_RULE, {"rule": "CONFIG_ERROR", "teamId": loud.id,
                                             "enabled": False}) == "NOT_FOUND"
    assert await admin.error_code(SET_RULE, {"rule": "CONFIG_ERROR",
                                             "enabled": False}) == "FORBIDDEN"
    assert await admin.error_code(SET_RULE, {"rule": "PROCESS_CRASH_LOOP", "teamId": quiet.id,
                                             "params": {"crashes": -1}}) == "VALIDATION"
    assert await admin.error_code(SET_RULE, {"rule": "PROCESS_CRASH_LOOP", "teamId": quiet.id,
                                             "params": {"colour": 3}}) == "VALIDATION"

    await config_error(http, ours)
    await config_error(http, theirs)
    await alert_of(theirs)  # the other team's alert opened, after ours was considered
    assert not await Alert.filter(satellite_id=ours.id).exists()

    reset = await admin.data(SET_RULE, {"rule": "CONFIG_ERROR", "teamId": quiet.id,
                                        "reset": True})
    assert reset["setAlertRule"]["enabled"] is True
    assert reset["setAlertRule"]["teamId"] is None  # the global settings again


async def test_params_override_the_defaults_and_show_in_alert_rules(
    graphql_as: ClientFactory, make_team: TeamFactory,
) -> None:
    team = await make_team()
    admin = await graphql_as(teams={team.id: TeamRole.TEAM_ADMIN})
    await admin.data(SET_RULE, {"rule": "PROCESS_CRASH_LOOP", "teamId": team.id,
                                "params": {"crashes": 5}})
    rules = await admin.data("query($t: ID) { alertRules(teamId: $t) { rule params teamId } }",
                             {"t": team.id})
    loop = next(item for item in rules["alertRules"] if item["rule"] == "PROCESS_CRASH_LOOP")
    assert loop == {"rule": "PROCESS_CRASH_LOOP", "teamId": team.id,
                    "params": {"crashes": 5.0, "window_seconds": 600.0}}


async def test_webhooks_to_inward_addresses_are_refused_unless_allowed(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, webhook_allow_private=False)
    async with running(settings) as (rt, http):
        admin = await _global_admin(rt, http)
        document = "mutation($url: String!) { createWebhook(url: $url) { secret } }"
        for url in ("http://127.0.0.1:8080/hook", "http://10.1.2.3/hook",
                    "http://169.254.169.254/latest/meta-data", "http://[::1]/x"):
            assert await admin.error_code(document, {"url": url}) == "VALIDATION", url
        for url in ("ftp://example.com/hook", "https://user:pw@example.com/hook", "hook"):
            assert await admin.error_code(document, {"url": url}) == "VALIDATION", url
        assert await Webhook.all().count() == 0


async def _global_admin(rt: Runtime, http: aiohttp.ClientSession) -> GraphQLClient:
    """A global administrator of a server the test runs itself, logged in."""
    user = await create_user(rt, email="root@example.com", password=PASSWORD,
                             global_role=GlobalRole.GLOBAL_ADMIN, actor=CLI_ACTOR)
    return GraphQLClient(http, await log_in(http, user.email), user)


async def test_a_webhook_that_keeps_failing_is_disabled_with_an_alert_and_comes_back(
    tmp_path: Path, receiver: Receiver,
) -> None:
    settings = make_settings(tmp_path, webhook_max_attempts=2, webhook_disable_after=2,
                             webhook_retry_base_seconds=0.01)
    async with running(settings) as (rt, http):
        admin = await _global_admin(rt, http)
        webhook_id, secret = await create_webhook(admin, receiver.url)
        receiver.failures_left = 4  # two deliveries, two attempts each
        test = "mutation($id: ID!) { testWebhook(id: $id) { id event state } }"
        for _ in range(2):
            queued = await admin.data(test, {"id": webhook_id})
            assert queued["testWebhook"]["event"] == "webhook.test"

        async def disabled() -> bool:
            return not (await Webhook.get(id=webhook_id)).enabled

        async def alerted() -> bool:
            return await Alert.exists(rule="webhook_disabled", subject=webhook_id)

        await eventually(disabled)
        await eventually(alerted)  # raised right after the run that disabled it
        alert = await Alert.get(rule="webhook_disabled", subject=webhook_id)
        assert alert.team_id is None  # type: ignore[attr-defined]
        listed = await admin.data("query($id: ID!) { webhookDeliveries(id: $id) { "
                                  "edges { node { state attempts lastStatus } } } }",
                                  {"id": webhook_id})
        assert [edge["node"] for edge in listed["webhookDeliveries"]["edges"]] == [
            {"state": "FAILED", "attempts": 2, "lastStatus": 503}] * 2
        assert await admin.error_code(test, {"id": webhook_id}) == "VALIDATION"

        enabled = await admin.data("mutation($id: ID!) { enableWebhook(id: $id) { enabled } }",
                                   {"id": webhook_id})
        assert enabled["enableWebhook"]["enabled"] is True
        assert (await Alert.get(id=alert.id)).resolved_at is not None
        await admin.data(test, {"id": webhook_id})
        # Back on: it hears its own alert resolve (a global webhook hears every alert),
        # then the test delivery.
        documents = [verified(await receiver.next(), secret) for _ in range(2)]
        assert sorted((document["event"], document.get("alert", {}).get("rule"))
                      for document in documents) == [("alert.resolved", "webhook_disabled"),
                                                     ("webhook.test", None)]


async def config_refreshed(http: aiohttp.ClientSession, satellite: TestSatellite) -> None:
    body = {"events": [{"type": "config.refreshed", "timestamp": TS, "data": {
        "config_hash": "abc", "server_count": 1, "change_detected": True}}]}
    async with http.post(satellite.path("events"), json=body,
                         headers=satellite.headers) as response:
        assert response.status == 200, await response.text()


async def test_a_silenced_alert_notifies_no_one_until_the_silence_ends(
    rt: Runtime, http: aiohttp.ClientSession, graphql_as: ClientFactory, make_team: TeamFactory,
    make_satellite: SatelliteFactory, receiver: Receiver,
) -> None:
    team = await make_team()
    quiet, loud = [await make_satellite(satellite_type=SatelliteType.TEAM, team_id=team.id)
                   for _ in range(2)]
    admin = await graphql_as(teams={team.id: TeamRole.TEAM_ADMIN})
    _, secret = await create_webhook(admin, receiver.url, team.id)
    await config_error(http, quiet)
    opened = verified(await receiver.next(), secret)
    assert (opened["event"], opened["alert"]["satellite_id"]) == ("alert.opened", quiet.id)

    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    await admin.data("mutation($id: ID!, $until: DateTime) { silenceAlert(id: $id, "
                     "until: $until) { id } }", {"id": opened["alert"]["id"], "until": until})
    await config_refreshed(http, quiet)  # resolves it, silently
    await config_error(http, loud)  # caused after: the next delivery must be this one

    following = verified(await receiver.next(), secret)
    assert (following["event"], following["alert"]["satellite_id"]) == ("alert.opened",
                                                                        loud.id)
    resolved = await Alert.get(id=opened["alert"]["id"])
    assert resolved.resolved_at is not None
