"""`satellite_config` rendering (docs/protocol.md §9): defaults, team limits, overrides,
versions."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from app.models import Team
from app.models.enums import SatelliteType
from app.runtime import Runtime
from app.services.mcp.satellite_config import (
    DEFAULT_RESOURCE_LIMITS,
    POLLING_INTERVALS,
    canonical_json,
    deep_merge,
    render_satellite_config,
)
from tests.fixtures.satellites import SatelliteFactory, TestSatellite

Json = dict[str, Any]


async def rendered(rt: Runtime, satellite: TestSatellite) -> tuple[Json, bytes, str]:
    state = rt.fleet.get(satellite.id)
    assert state is not None
    config = await render_satellite_config(rt, state)
    return json.loads(config.body), config.body, config.version


async def test_global_satellite_gets_the_defaults(
    rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite(satellite_type=SatelliteType.GLOBAL)

    body, _, version = await rendered(rt, satellite)

    assert body["mcp_servers"] == {}
    assert body["config_version"] == version
    settings = body["satellite_config"]
    assert settings["polling_intervals"] == {
        "immediate": 2, "high": 10, "normal": 30, "slow": 60, "error_backoff_max": 300,
    }
    assert settings["heartbeat_interval"] == rt.settings.heartbeat_interval
    assert settings["resource_limits"] == {**DEFAULT_RESOURCE_LIMITS, "team_limits": {}}
    assert settings["team_settings"] == {"allowed_servers": [], "isolation_level": "process"}
    assert settings["logging"] == {"level": "info"}


async def test_team_satellite_limits_are_narrowed_by_its_team(
    rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    team = await Team.create(name="Acme", slug="acme", max_processes=5,
                             max_cpu_percent=DEFAULT_RESOURCE_LIMITS["max_cpu_percent"] + 10)
    satellite = await make_satellite(satellite_type=SatelliteType.TEAM, team_id=team.id)

    body, _, _ = await rendered(rt, satellite)

    settings = body["satellite_config"]
    assert settings["resource_limits"] == {
        "max_processes": 5,  # narrower than the default: the team wins
        "max_memory_per_process_mb": DEFAULT_RESOURCE_LIMITS["max_memory_per_process_mb"],
        "max_cpu_percent": DEFAULT_RESOURCE_LIMITS["max_cpu_percent"],  # a team cannot widen
    }
    assert settings["team_settings"]["isolation_level"] == "team"


async def test_global_satellite_lists_the_limits_of_teams_that_have_any(
    rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    limited = await Team.create(name="Small", slug="small", max_memory_per_process_mb=128)
    await Team.create(name="Free", slug="free")
    satellite = await make_satellite(satellite_type=SatelliteType.GLOBAL)

    body, _, _ = await rendered(rt, satellite)

    limits = body["satellite_config"]["resource_limits"]
    assert limits["max_memory_per_process_mb"] == DEFAULT_RESOURCE_LIMITS[
        "max_memory_per_process_mb"]
    assert limits["team_limits"] == {
        limited.id: {**DEFAULT_RESOURCE_LIMITS, "max_memory_per_process_mb": 128},
    }


async def test_overrides_are_deep_merged_over_the_defaults(
    rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite()
    await rt.fleet.apply_admin_change(satellite.id, "test", config_overrides={
        "polling_intervals": {"normal": 15},
        "logging": {"level": "debug"},
        "custom": {"region": "eu"},
    })

    body, _, _ = await rendered(rt, satellite)

    settings = body["satellite_config"]
    assert settings["polling_intervals"] == {**POLLING_INTERVALS, "normal": 15}
    assert settings["logging"] == {"level": "debug"}
    assert settings["custom"] == {"region": "eu"}
    assert settings["heartbeat_interval"] == rt.settings.heartbeat_interval


async def test_rendering_is_canonical_and_its_version_digests_the_content(
    rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite()

    body, raw, version = await rendered(rt, satellite)
    _, raw_again, version_again = await rendered(rt, satellite)

    assert raw == raw_again
    assert version == version_again
    assert raw == canonical_json(body)
    content = {"mcp_servers": body["mcp_servers"], "satellite_config": body["satellite_config"]}
    assert version == hashlib.sha256(canonical_json(content)).hexdigest()[:32]
    assert b" " not in raw


async def test_different_satellites_with_equal_configs_share_the_version(
    rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    first = await make_satellite()
    second = await make_satellite()

    assert (await rendered(rt, first))[2] == (await rendered(rt, second))[2]


def test_deep_merge_merges_objects_and_replaces_everything_else() -> None:
    base = {"a": {"x": 1, "y": {"z": 2}}, "b": [1, 2], "c": 3}

    merged = deep_merge(base, {"a": {"y": {"w": 4}}, "b": [9], "c": {"now": "object"}})

    assert merged == {"a": {"x": 1, "y": {"z": 2, "w": 4}}, "b": [9], "c": {"now": "object"}}
    assert base == {"a": {"x": 1, "y": {"z": 2}}, "b": [1, 2], "c": 3}  # not modified
