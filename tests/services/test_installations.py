"""Team installations: rendering into satellite configs, scope, pinning, secrets,
revisions and rollback, and the `configure` commands each change enqueues."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.auth.secrets import is_encrypted
from app.errors import Conflict, NotFound, ValidationError
from app.models import (
    McpInstallation,
    McpInstallationRevision,
    McpUserConfig,
    SatelliteCommand,
    Team,
)
from app.models.enums import CommandStatus, CommandType, SatelliteType
from app.runtime import Runtime
from app.services.commands.claims import poll_commands
from app.services.common.actors import CLI_ACTOR
from app.services.mcp.config_merge import MASK
from app.services.mcp.installations import (
    AWAITING_CONFIG,
    InstallationChange,
    delete_installation,
    list_revisions,
    rollback_installation,
    set_user_config,
    update_installation,
)
from app.services.mcp.satellite_config import render_satellite_config
from tests.fixtures.mcp import CATALOG, InstallFactory, import_test_catalog
from tests.fixtures.people import TeamFactory, UserFactory
from tests.fixtures.satellites import SatelliteFactory, TestSatellite
from tests.fixtures.server import stored_bytes

Json = dict[str, Any]


async def config_of(rt: Runtime, satellite: TestSatellite) -> tuple[Json, str]:
    state = rt.fleet.get(satellite.id)
    assert state is not None
    rendered = await render_satellite_config(rt, state)
    return json.loads(rendered.body), rendered.version


async def servers_of(rt: Runtime, satellite: TestSatellite) -> Json:
    body, _ = await config_of(rt, satellite)
    servers: Json = body["mcp_servers"]
    return servers


async def configures(satellite: TestSatellite) -> list[SatelliteCommand]:
    return await SatelliteCommand.filter(
        satellite_id=satellite.id, command_type=CommandType.CONFIGURE
    ).order_by("created_at")


async def deliver_all(rt: Runtime, satellite: TestSatellite) -> None:
    state = rt.fleet.get(satellite.id)
    assert state is not None
    await poll_commands(rt, state, limit=100, wait=0)


def pid(installation: McpInstallation) -> str:
    return f"{installation.server.slug}-{installation.team.slug}-{installation.id}"



@pytest.fixture
async def team(make_team: TeamFactory) -> Team:
    return await make_team()


@pytest.fixture
async def satellite(make_satellite: SatelliteFactory) -> TestSatellite:
    """A global satellite: it serves every team."""
    return await make_satellite()


# ---- rendering and scope --------------------------------------------------------------


async def test_an_installation_renders_the_merged_stdio_entry(
    rt: Runtime, make_team: TeamFactory, satellite: TestSatellite,
    install: InstallFactory,
) -> None:
    team = await make_team(slug="acme")
    installation = await install(
        team.id, name="Files", args=["/srv"], env={"ROOT_DIR": "/srv/data", "LOG_LEVEL": "debug"},
        settings={"restart_policy": "always"},
    )

    servers = await servers_of(rt, satellite)

    assert list(servers) == [f"filesystem-acme-{installation.id}"]
    assert servers[pid(installation)] == {
        "installation_id": installation.id,
        "installation_name": "Files",
        "team_id": team.id,
        "team_slug": "acme",
        "server_slug": "filesystem",
        "server_name": "Filesystem",
        "transport_type": "stdio",
        "enabled": True,
        "command": "npx",
        "args": ["-y", "@modelcontextprotocol/server-filesystem", "/srv"],
        "env": {"LOG_LEVEL": "debug", "ROOT_DIR": "/srv/data"},
        "secret_metadata": {},
        "settings": {"restart_policy": "always"},
    }


async def test_http_entry_with_a_secret_header_is_plain_only_in_the_config(
    rt: Runtime, team: Team, satellite: TestSatellite,
    install: InstallFactory,
) -> None:
    installation = await install(team.id, "web-search",
                                 headers={"Authorization": "Bearer s3cret-value"})

    stored = await McpInstallation.get(id=installation.id)
    assert is_encrypted(stored.headers["Authorization"])
    revision = await McpInstallationRevision.get(installation_id=installation.id, revision=1)
    assert "s3cret-value" not in json.dumps(revision.snapshot)

    entry = (await servers_of(rt, satellite))[pid(installation)]
    assert entry["transport_type"] == "http"
    assert entry["url"] == "https://mcp.example.com/search"
    assert entry["headers"] == {"X-Client": "groundstation", "Authorization": "Bearer s3cret-value"}
    assert entry["timeout"] > 0
    assert entry["secret_metadata"] == {"headers": ["Authorization"]}
    assert "command" not in entry
    assert "env" not in entry


async def test_no_plaintext_secret_reaches_the_database_file(
    rt: Runtime, team: Team, satellite: TestSatellite,
    install: InstallFactory, make_user: UserFactory,
) -> None:
    installation = await install(team.id, env={"ROOT_DIR": "/d", "DB_PASSWORD": "hunter2-xyz"})
    owner = await make_user(email="o@example.com")
    await update_installation(rt, installation.id, InstallationChange(owner_id=owner.id),
                              actor=CLI_ACTOR)
    await set_user_config(rt, installation.id, user_id=owner.id,
                          values={"env": {"API_TOKEN": "tok-9f8e7d"}}, actor=CLI_ACTOR)

    entry = (await servers_of(rt, satellite))[pid(installation)]
    assert entry["env"]["DB_PASSWORD"] == "hunter2-xyz"
    assert entry["env"]["API_TOKEN"] == "tok-9f8e7d"
    assert entry["secret_metadata"] == {"env": ["API_TOKEN", "DB_PASSWORD"]}

    content = await stored_bytes(rt.settings)
    assert b"hunter2-xyz" not in content
    assert b"tok-9f8e7d" not in content


async def test_team_satellites_get_only_their_team_and_global_ones_get_every_team(
    rt: Runtime, make_team: TeamFactory, make_satellite: SatelliteFactory,
    install: InstallFactory,
) -> None:
    team_a, team_b = await make_team(), await make_team()
    sat_a = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=team_a.id)
    sat_b = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=team_b.id)
    global_sat = await make_satellite()
    inst_a = await install(team_a.id)
    inst_b = await install(team_b.id, "web-search")

    assert set(await servers_of(rt, sat_a)) == {pid(inst_a)}
    assert set(await servers_of(rt, sat_b)) == {pid(inst_b)}
    body, _ = await config_of(rt, sat_a)
    assert team_b.id not in json.dumps(body)
    global_servers = await servers_of(rt, global_sat)
    assert set(global_servers) == {pid(inst_a), pid(inst_b)}
    assert global_servers[pid(inst_b)]["team_id"] == team_b.id


async def test_a_pinned_installation_goes_only_to_its_satellite(
    rt: Runtime, team: Team, make_satellite: SatelliteFactory,
    install: InstallFactory,
) -> None:
    own = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=team.id)
    global_one, global_two = await make_satellite(), await make_satellite()
    pinned = await install(team.id, pinned_satellite_id=global_two.id)

    assert pid(pinned) in await servers_of(rt, global_two)
    assert pid(pinned) not in await servers_of(rt, global_one)
    assert pid(pinned) not in await servers_of(rt, own)
    assert {c.satellite_id for c in await SatelliteCommand.filter(  # type: ignore[attr-defined]
        command_type=CommandType.CONFIGURE)} == {global_two.id}


async def test_pinning_to_another_teams_satellite_is_refused(
    rt: Runtime, make_team: TeamFactory, make_satellite: SatelliteFactory,
    install: InstallFactory,
) -> None:
    team_a, team_b = await make_team(), await make_team()
    sat_b = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=team_b.id)

    with pytest.raises(ValidationError, match="pinned only"):
        await install(team_a.id, pinned_satellite_id=sat_b.id)
    with pytest.raises(NotFound):
        await install(team_a.id, pinned_satellite_id="no-such-satellite")
    assert await McpInstallation.all().count() == 0


async def test_disabled_installations_leave_the_config(
    rt: Runtime, team: Team, satellite: TestSatellite,
    install: InstallFactory,
) -> None:
    installation = await install(team.id)

    await update_installation(rt, installation.id, InstallationChange(enabled=False),
                              actor=CLI_ACTOR)
    assert await servers_of(rt, satellite) == {}


# ---- schemas, required fields, user tier ------------------------------------------------


async def test_fields_outside_the_team_schema_are_refused_and_nothing_is_saved(
    rt: Runtime, team: Team, install: InstallFactory
) -> None:
    with pytest.raises(ValidationError) as raised:
        await install(team.id, env={"ROOT_DIR": "/d", "API_TOKEN": "x"})
    assert "API_TOKEN" in raised.value.message
    assert "may not be set" in raised.value.message
    assert await McpInstallation.all().count() == 0


async def test_a_missing_required_field_awaits_config_until_given(
    rt: Runtime, team: Team, satellite: TestSatellite,
    install: InstallFactory,
) -> None:
    installation = await install(team.id, env={"LOG_LEVEL": "warn"})

    assert installation.status == AWAITING_CONFIG
    assert await servers_of(rt, satellite) == {}

    updated = await update_installation(
        rt, installation.id, InstallationChange(env={"ROOT_DIR": "/data"}), actor=CLI_ACTOR
    )
    assert updated.status == "provisioning"
    assert pid(installation) in await servers_of(rt, satellite)


async def test_the_owner_tier_wins_and_other_users_tiers_do_not_render(
    rt: Runtime, team: Team, satellite: TestSatellite,
    install: InstallFactory, make_user: UserFactory,
) -> None:
    owner = await make_user(email="owner@example.com")
    other = await make_user(email="other@example.com")
    installation = await install(team.id, owner_id=owner.id,
                                 env={"ROOT_DIR": "/d", "LOG_LEVEL": "team"})

    await set_user_config(rt, installation.id, user_id=other.id,
                          values={"env": {"LOG_LEVEL": "other"}}, actor=CLI_ACTOR)
    assert (await servers_of(rt, satellite))[pid(installation)]["env"]["LOG_LEVEL"] == "team"

    await set_user_config(rt, installation.id, user_id=owner.id,
                          values={"env": {"LOG_LEVEL": "owner"}}, actor=CLI_ACTOR)
    assert (await servers_of(rt, satellite))[pid(installation)]["env"]["LOG_LEVEL"] == "owner"

    with pytest.raises(ValidationError, match="ROOT_DIR"):
        await set_user_config(rt, installation.id, user_id=owner.id,
                              values={"env": {"ROOT_DIR": "/elsewhere"}}, actor=CLI_ACTOR)


async def test_the_mask_keeps_a_stored_secret_and_values_that_look_encrypted_are_refused(
    rt: Runtime, team: Team, satellite: TestSatellite,
    install: InstallFactory,
) -> None:
    installation = await install(team.id, env={"ROOT_DIR": "/d", "DB_PASSWORD": "pw-1"})
    revisions_before = len(await list_revisions(installation.id))

    await update_installation(rt, installation.id, InstallationChange(
        env={"ROOT_DIR": "/d", "DB_PASSWORD": MASK}), actor=CLI_ACTOR)
    assert len(await list_revisions(installation.id)) == revisions_before  # nothing changed
    assert (await servers_of(rt, satellite))[pid(installation)]["env"]["DB_PASSWORD"] == "pw-1"

    stored = (await McpInstallation.get(id=installation.id)).env["DB_PASSWORD"]
    with pytest.raises(ValidationError, match="encrypted"):
        await update_installation(rt, installation.id, InstallationChange(
            env={"ROOT_DIR": "/d", "DB_PASSWORD": stored}), actor=CLI_ACTOR)


# ---- configure commands -----------------------------------------------------------------


async def test_a_change_enqueues_one_immediate_configure_per_serving_satellite(
    rt: Runtime, make_team: TeamFactory, make_satellite: SatelliteFactory,
    install: InstallFactory,
) -> None:
    team, other_team = await make_team(), await make_team()
    own = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=team.id)
    other = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=other_team.id)
    global_sat = await make_satellite()

    installation = await install(team.id)

    for satellite in (own, global_sat):
        [command] = await configures(satellite)
        assert command.priority == "immediate"
        assert command.status is CommandStatus.PENDING
        assert command.payload == {"event": "mcp_installation_created",
                                   "installation_id": installation.id, "team_id": team.id}
    assert await configures(other) == []


async def test_configure_is_deduplicated_while_pending_and_sent_again_after_delivery(
    rt: Runtime, team: Team, satellite: TestSatellite,
    install: InstallFactory,
) -> None:
    installation = await install(team.id)
    await update_installation(rt, installation.id, InstallationChange(name="Renamed"),
                              actor=CLI_ACTOR)
    assert len(await configures(satellite)) == 1

    await deliver_all(rt, satellite)
    await update_installation(rt, installation.id, InstallationChange(name="Renamed again"),
                              actor=CLI_ACTOR)
    commands = await configures(satellite)
    assert len(commands) == 2
    assert commands[1].payload["event"] == "mcp_installation_updated"


async def test_a_save_that_changes_nothing_makes_no_revision_and_no_configure(
    rt: Runtime, team: Team, satellite: TestSatellite,
    install: InstallFactory,
) -> None:
    installation = await install(team.id, env={"ROOT_DIR": "/d", "DB_PASSWORD": "same"})
    await deliver_all(rt, satellite)
    _, version = await config_of(rt, satellite)

    await update_installation(rt, installation.id, InstallationChange(
        env={"ROOT_DIR": "/d", "DB_PASSWORD": "same"}, name=installation.name), actor=CLI_ACTOR)

    assert len(await list_revisions(installation.id)) == 1
    assert len(await configures(satellite)) == 1
    assert (await config_of(rt, satellite))[1] == version


async def test_moving_a_pin_configures_both_sides(
    rt: Runtime, team: Team, make_satellite: SatelliteFactory,
    install: InstallFactory,
) -> None:
    first, second = await make_satellite(), await make_satellite()
    installation = await install(team.id, pinned_satellite_id=first.id)
    await deliver_all(rt, first)

    await update_installation(rt, installation.id,
                              InstallationChange(pinned_satellite_id=second.id), actor=CLI_ACTOR)

    assert len(await configures(first)) == 2
    assert len(await configures(second)) == 1
    assert pid(installation) not in await servers_of(rt, first)
    assert pid(installation) in await servers_of(rt, second)


async def test_deleting_configures_the_satellites_and_removes_the_entry(
    rt: Runtime, team: Team, satellite: TestSatellite,
    install: InstallFactory,
) -> None:
    installation = await install(team.id)
    await deliver_all(rt, satellite)

    await delete_installation(rt, installation.id, actor=CLI_ACTOR)

    assert await servers_of(rt, satellite) == {}
    last = (await configures(satellite))[-1]
    assert last.payload == {"event": "mcp_installation_deleted",
                            "installation_id": installation.id, "team_id": team.id}
    assert await McpInstallationRevision.filter(installation_id=installation.id).count() == 0


async def test_catalog_changes_configure_only_when_a_template_changed(
    rt: Runtime, team: Team, satellite: TestSatellite,
    install: InstallFactory,
) -> None:
    await install(team.id)
    await deliver_all(rt, satellite)
    _, version = await config_of(rt, satellite)

    await import_test_catalog(rt)  # the same file again
    assert len(await configures(satellite)) == 1
    assert (await config_of(rt, satellite))[1] == version

    changed = json.loads(json.dumps(CATALOG))
    changed["servers"][0]["env"]["LOG_LEVEL"] = "warn"
    await import_test_catalog(rt, changed)
    assert len(await configures(satellite)) == 2
    assert (await config_of(rt, satellite))[1] != version


# ---- revisions and rollback -------------------------------------------------------------


async def test_rollback_restores_exactly_the_earlier_rendering_as_a_new_revision(
    rt: Runtime, team: Team, satellite: TestSatellite,
    install: InstallFactory, make_user: UserFactory,
) -> None:
    owner = await make_user(email="r@example.com")
    installation = await install(team.id, owner_id=owner.id,
                                 env={"ROOT_DIR": "/good", "DB_PASSWORD": "pw-good"})
    await set_user_config(rt, installation.id, user_id=owner.id,
                          values={"env": {"API_TOKEN": "user-good"}}, actor=CLI_ACTOR)
    good_body, good_version = await config_of(rt, satellite)

    await update_installation(rt, installation.id, InstallationChange(
        env={"ROOT_DIR": "/bad", "DB_PASSWORD": "pw-bad"}, args=["--broken"]), actor=CLI_ACTOR)
    await set_user_config(rt, installation.id, user_id=owner.id,
                          values={"env": {"API_TOKEN": "user-bad"}}, actor=CLI_ACTOR)
    assert (await config_of(rt, satellite))[1] != good_version
    await deliver_all(rt, satellite)

    restored = await rollback_installation(rt, installation.id, 2, actor=CLI_ACTOR)

    assert restored.revision == 5
    assert [r.revision for r in await list_revisions(installation.id)] == [5, 4, 3, 2, 1]
    body, version = await config_of(rt, satellite)
    assert version == good_version
    assert body == good_body
    assert (await configures(satellite))[-1].status is CommandStatus.PENDING
    user_config = await McpUserConfig.get(installation_id=installation.id, user_id=owner.id)
    assert is_encrypted(user_config.env["API_TOKEN"])


async def test_rollback_to_an_unknown_revision_is_not_found(
    rt: Runtime, make_team: TeamFactory, install: InstallFactory
) -> None:
    installation = await install((await make_team()).id)
    with pytest.raises(NotFound):
        await rollback_installation(rt, installation.id, 9, actor=CLI_ACTOR)


async def test_a_stale_concurrent_update_is_refused(
    rt: Runtime, make_team: TeamFactory, install: InstallFactory
) -> None:
    installation = await install((await make_team()).id)
    await McpInstallation.filter(id=installation.id).update(revision=7)
    from app.services.mcp import installations

    with pytest.raises(Conflict):
        await installations._apply(
            rt, installation, installations.template_of(installation.server),
            await installations._current_state(installation),
            installations._State(**{**installations._fields(
                await installations._current_state(installation)), "name": "x"}),
            actor=CLI_ACTOR, action="test",
        )


# ---- last good rendering ----------------------------------------------------------------


async def test_an_unreadable_secret_serves_the_last_good_rendering(
    rt: Runtime, team: Team, satellite: TestSatellite,
    install: InstallFactory,
) -> None:
    installation = await install(team.id, env={"ROOT_DIR": "/d", "DB_PASSWORD": "pw"})
    good = await servers_of(rt, satellite)
    unreadable = "enc:v1:00000000:" + "A" * 60
    await McpInstallation.filter(id=installation.id).update(
        env={"ROOT_DIR": "/d", "DB_PASSWORD": unreadable})

    assert await servers_of(rt, satellite) == good
    row = await McpInstallation.get(id=installation.id)
    assert row.render_error is not None
    assert "key ring" in row.render_error


async def test_an_unreadable_secret_without_a_good_rendering_is_left_out(
    rt: Runtime, team: Team, satellite: TestSatellite,
    install: InstallFactory,
) -> None:
    broken = await install(team.id, env={"ROOT_DIR": "/d"})
    fine = await install(team.id, "web-search")
    await McpInstallation.filter(id=broken.id).update(
        env={"ROOT_DIR": "/d", "DB_PASSWORD": "enc:v1:00000000:" + "A" * 60})

    assert set(await servers_of(rt, satellite)) == {pid(fine)}


async def test_fetching_an_unchanged_config_rewrites_nothing(
    rt: Runtime, team: Team, satellite: TestSatellite, install: InstallFactory,
) -> None:
    installation = await install(team.id, env={"ROOT_DIR": "/d", "DB_PASSWORD": "pw-5f0c9e1d"})
    await servers_of(rt, satellite)
    stored = (await McpInstallation.get(id=installation.id)).last_good_rendering

    await servers_of(rt, satellite)

    assert (await McpInstallation.get(id=installation.id)).last_good_rendering == stored
    assert "pw-5f0c9e1d" not in json.dumps(stored)
