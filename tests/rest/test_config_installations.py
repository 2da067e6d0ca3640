"""The config a satellite fetches once teams install MCP servers (docs/protocol.md §9, defect 9):
stable bytes and ETag while nothing changes, a new ETag and one `configure` when
something does, and secrets readable across a key-ring rotation and a restart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp

from app.auth.secrets import generate_key
from app.models import Team
from app.models.enums import SatelliteType
from app.runtime import Runtime
from app.services.common.actors import CLI_ACTOR
from app.services.mcp.catalog import get_server_by_slug
from app.services.mcp.installations import InstallationChange, install_server, update_installation
from app.services.people.teams import create_team
from tests.fixtures.mcp import InstallFactory, import_test_catalog
from tests.fixtures.people import TeamFactory
from tests.fixtures.satellites import SatelliteFactory, TestSatellite, satellite_factory
from tests.fixtures.server import make_settings, running
from tests.rest.test_config import fetch

Json = dict[str, Any]


async def poll_commands(http: aiohttp.ClientSession, satellite: TestSatellite) -> list[Json]:
    async with http.get(satellite.path("commands"), params={"wait": "2"},
                        headers=satellite.headers) as response:
        assert response.status == 200
        commands: list[Json] = (await response.json())["commands"]
        return commands


async def test_an_unchanged_config_keeps_its_etag_and_bytes_and_answers_304(
    http: aiohttp.ClientSession, make_team: TeamFactory, make_satellite: SatelliteFactory,
    install: InstallFactory,
) -> None:
    team = await make_team()
    satellite = await make_satellite()
    await install(team.id, env={"ROOT_DIR": "/d", "DB_PASSWORD": "pw-secret"})
    await install(team.id, "web-search", headers={"Authorization": "Bearer abc"})

    _, first_headers, first = await fetch(http, satellite)
    _, again_headers, again = await fetch(http, satellite)
    status, _, empty = await fetch(http, satellite, {"If-None-Match": first_headers["ETag"]})

    assert again == first
    assert again_headers["ETag"] == first_headers["ETag"]
    assert (status, empty) == (304, b"")
    servers = json.loads(first)["mcp_servers"]
    assert len(servers) == 2
    assert {entry["team_id"] for entry in servers.values()} == {team.id}


async def test_a_change_makes_a_new_etag_and_exactly_one_configure_per_satellite(
    http: aiohttp.ClientSession, rt: Runtime, make_team: TeamFactory,
    make_satellite: SatelliteFactory, install: InstallFactory,
) -> None:
    team, other_team = await make_team(), await make_team()
    own = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=team.id)
    other = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=other_team.id)
    global_sat = await make_satellite()
    installation = await install(team.id)
    etags = {sat.id: (await fetch(http, sat))[1]["ETag"] for sat in (own, other, global_sat)}
    for sat in (own, global_sat):
        assert [c["payload"]["event"] for c in await poll_commands(http, sat)] == [
            "mcp_installation_created"]

    await update_installation(rt, installation.id, InstallationChange(
        env={"ROOT_DIR": "/new"}), actor=CLI_ACTOR)
    await update_installation(rt, installation.id, InstallationChange(
        env={"ROOT_DIR": "/newer"}), actor=CLI_ACTOR)

    for sat in (own, global_sat):
        status, headers, body = await fetch(http, sat, {"If-None-Match": etags[sat.id]})
        assert status == 200
        assert headers["ETag"] != etags[sat.id]
        [entry] = json.loads(body)["mcp_servers"].values()
        assert entry["env"]["ROOT_DIR"] == "/newer"
        commands = await poll_commands(http, sat)
        assert len(commands) == 1  # two changes while one was pending: one configure
        assert commands[0]["priority"] == "immediate"
        assert commands[0]["payload"]["installation_id"] == installation.id
    status, _, _ = await fetch(http, other, {"If-None-Match": etags[other.id]})
    assert status == 304


async def test_team_limits_reach_the_teams_satellites_and_the_global_ones_only(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, make_team: TeamFactory
) -> None:
    limited = await Team.create(name="Small", slug="small", max_processes=2)
    other = await make_team()
    limited_sat = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=limited.id)
    other_sat = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=other.id)
    global_sat = await make_satellite()

    def limits(body: bytes) -> Json:
        result: Json = json.loads(body)["satellite_config"]["resource_limits"]
        return result

    assert limits((await fetch(http, limited_sat))[2])["max_processes"] == 2
    assert limits((await fetch(http, other_sat))[2])["max_processes"] > 2
    assert limited.id not in json.dumps(limits((await fetch(http, other_sat))[2]))
    assert limits((await fetch(http, global_sat))[2])["team_limits"][limited.id][
        "max_processes"] == 2


async def test_secrets_survive_a_key_ring_rotation_across_a_restart(tmp_path: Path) -> None:
    old_key, new_key = generate_key(), generate_key()
    before = make_settings(tmp_path, encryption_keys=(old_key,))
    async with running(before) as (rt, http):
        await import_test_catalog(rt)
        satellite = await satellite_factory(rt)()
        team = await create_team(rt, name="Acme", slug="acme", admin_email=None, actor=CLI_ACTOR)
        await install_server(
            rt, team_id=team.id, server_id=(await get_server_by_slug("filesystem")).id,
            change=InstallationChange(env={"ROOT_DIR": "/d", "DB_PASSWORD": "kept-secret"}),
            actor=CLI_ACTOR,
        )
        _, headers, body = await fetch(http, satellite)

    rotated = make_settings(tmp_path, encryption_keys=(new_key, old_key))
    async with running(rotated) as (_, http):
        _, headers_after, body_after = await fetch(http, satellite)

    assert body_after == body
    assert headers_after["ETag"] == headers["ETag"]
    [entry] = json.loads(body_after)["mcp_servers"].values()
    assert entry["env"]["DB_PASSWORD"] == "kept-secret"
