"""Changes outside installations that alter rendered configs also push `configure`:
a team's slug and limits, a satellite's overrides (docs/protocol.md §9)."""

from __future__ import annotations

import json

import pytest

from app.errors import Conflict, ValidationError
from app.models import SatelliteCommand
from app.models.enums import CommandType, SatelliteType
from app.runtime import Runtime
from app.services.common.actors import CLI_ACTOR
from app.services.mcp.satellite_config import render_satellite_config
from app.services.people.teams import update_team
from app.services.satellites.admin import set_config_overrides
from tests.fixtures.mcp import InstallFactory
from tests.fixtures.people import TeamFactory
from tests.fixtures.satellites import SatelliteFactory, TestSatellite


async def configure_count(satellite: TestSatellite) -> int:
    return await SatelliteCommand.filter(
        satellite_id=satellite.id, command_type=CommandType.CONFIGURE
    ).count()


async def body_of(rt: Runtime, satellite: TestSatellite) -> dict[str, object]:
    state = rt.fleet.get(satellite.id)
    assert state is not None
    config: dict[str, object] = json.loads((await render_satellite_config(rt, state)).body)
    return config


@pytest.fixture
async def fleet(make_team: TeamFactory, make_satellite: SatelliteFactory
                ) -> tuple[str, TestSatellite, TestSatellite, TestSatellite]:
    """A team, its own satellite, another team's satellite and a global one."""
    team, other = await make_team(slug="before"), await make_team()
    own = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=team.id)
    foreign = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=other.id)
    return team.id, own, foreign, await make_satellite()


async def test_a_new_team_slug_renames_process_ids_and_configures_the_teams_satellites(
    rt: Runtime, fleet: tuple[str, TestSatellite, TestSatellite, TestSatellite],
    install: InstallFactory,
) -> None:
    team_id, own, foreign, global_sat = fleet
    installation = await install(team_id)
    await SatelliteCommand.all().delete()

    await update_team(rt, team_id, slug="after", actor=CLI_ACTOR)

    servers = (await body_of(rt, own))["mcp_servers"]
    assert list(servers) == [f"filesystem-after-{installation.id}"]  # type: ignore[call-overload]
    assert (await configure_count(own), await configure_count(global_sat)) == (1, 1)
    assert await configure_count(foreign) == 0


async def test_limits_configure_and_a_rename_alone_does_not(
    rt: Runtime, fleet: tuple[str, TestSatellite, TestSatellite, TestSatellite]
) -> None:
    team_id, own, foreign, global_sat = fleet

    await update_team(rt, team_id, name="Renamed team", actor=CLI_ACTOR)
    assert await configure_count(own) == 0

    await update_team(rt, team_id, limits={"max_processes": 4}, actor=CLI_ACTOR)
    settings = (await body_of(rt, own))["satellite_config"]
    assert settings["resource_limits"]["max_processes"] == 4  # type: ignore[index]
    assert (await configure_count(own), await configure_count(global_sat)) == (1, 1)
    assert await configure_count(foreign) == 0


@pytest.mark.parametrize(("limits", "message"), [
    ({"max_processes": 0}, "positive integer"),
    ({"max_processes": 2.5}, "positive integer"),
    ({"max_cpu_percent": 101}, "at most 100"),
    ({"max_gpus": 1}, "Unknown team limit"),
])
async def test_bad_limits_are_refused(
    rt: Runtime, make_team: TeamFactory, limits: dict[str, float], message: str
) -> None:
    team = await make_team()
    with pytest.raises(ValidationError, match=message):
        await update_team(rt, team.id, limits=limits, actor=CLI_ACTOR)


async def test_a_taken_slug_is_a_conflict(rt: Runtime, make_team: TeamFactory) -> None:
    first, second = await make_team(), await make_team()
    with pytest.raises(Conflict):
        await update_team(rt, second.id, slug=first.slug, actor=CLI_ACTOR)


async def test_overrides_configure_only_their_satellite_and_only_when_changed(
    rt: Runtime, fleet: tuple[str, TestSatellite, TestSatellite, TestSatellite]
) -> None:
    _, own, _, global_sat = fleet

    await set_config_overrides(rt, own.id, {"logging": {"level": "debug"}}, actor=CLI_ACTOR)
    await set_config_overrides(rt, own.id, {"logging": {"level": "debug"}}, actor=CLI_ACTOR)

    assert (await body_of(rt, own))["satellite_config"]["logging"] == {  # type: ignore[index]
        "level": "debug"}
    assert (await configure_count(own), await configure_count(global_sat)) == (1, 0)


@pytest.mark.parametrize("overrides", [["not", "an", "object"], {"x": "y" * 20_000}])
async def test_bad_overrides_are_refused(
    rt: Runtime, make_satellite: SatelliteFactory, overrides: object
) -> None:
    satellite = await make_satellite()
    with pytest.raises(ValidationError):
        await set_config_overrides(rt, satellite.id, overrides, actor=CLI_ACTOR)  # type: ignore[arg-type]
