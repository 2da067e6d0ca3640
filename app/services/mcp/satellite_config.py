"""A satellite's configuration (docs/protocol.md §9), rendered canonically with a version digest.

The body is serialised canonically (sorted keys, compact separators) and
`config_version` is a digest of the canonical `mcp_servers` + `satellite_config`,
so an unchanged configuration always renders byte-identical and keeps its
version (the client diffs entries as JSON strings and would restart servers),
and any change to it changes the version (the REST layer's ETag).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tortoise.expressions import Q

from app.models import Satellite, Team
from app.services.fleet.state import SatelliteState
from app.services.mcp.entries import render_mcp_servers

if TYPE_CHECKING:
    from app.services.fleet.context import FleetContext

log = logging.getLogger(__name__)

POLLING_INTERVALS: dict[str, int] = {
    "immediate": 2,
    "high": 10,
    "normal": 30,
    "slow": 60,
    "error_backoff_max": 300,
}
# Global defaults; a team's own limits (teams.max_*) can only narrow them.
DEFAULT_RESOURCE_LIMITS: dict[str, int | float] = {
    "max_processes": 50,
    "max_memory_per_process_mb": 512,
    "max_cpu_percent": 80,
}
DEFAULT_LOGGING: dict[str, str] = {"level": "info"}
CONFIG_VERSION_LENGTH = 32
_LIMIT_FIELDS = tuple(DEFAULT_RESOURCE_LIMITS)


@dataclass(frozen=True, slots=True)
class RenderedConfig:
    body: bytes
    version: str


def canonical_json(value: Any) -> bytes:
    """The one serialisation used for the body and its digest: sorted keys, no spaces."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


async def render_satellite_config(rt: FleetContext, state: SatelliteState) -> RenderedConfig:
    """Render `{"mcp_servers", "satellite_config", "config_version"}` for one satellite.

    `config_version` is the first 32 hex characters of the SHA-256 of the
    canonical `{"mcp_servers", "satellite_config"}`: equal configurations give
    equal bytes and versions, different ones different versions.
    """
    content = {
        "mcp_servers": await render_mcp_servers(rt, state),
        "satellite_config": await render_satellite_settings(rt, state),
    }
    version = hashlib.sha256(canonical_json(content)).hexdigest()[:CONFIG_VERSION_LENGTH]
    return RenderedConfig(body=canonical_json({**content, "config_version": version}),
                          version=version)


async def render_satellite_settings(rt: FleetContext, state: SatelliteState) -> dict[str, Any]:
    """`satellite_config`: defaults, narrowed by team limits, then the satellite's overrides.

    A team satellite's `resource_limits` are the global defaults narrowed by its
    team's limits (the smaller value wins); a global satellite gets the defaults
    plus, under `team_limits`, the narrowed limits of every team that has any.
    Administrators' `config_overrides` are deep-merged on top.
    """
    settings: dict[str, Any] = {
        "polling_intervals": dict(POLLING_INTERVALS),
        "heartbeat_interval": rt.settings.heartbeat_interval,
        "resource_limits": await _resource_limits(state),
        "team_settings": {
            "allowed_servers": [],
            "isolation_level": "process" if state.is_global else "team",
        },
        "logging": dict(DEFAULT_LOGGING),
    }
    rows = await Satellite.filter(id=state.id).values_list("config_overrides", flat=True)
    overrides: Any = rows[0] if rows else None
    if isinstance(overrides, dict):
        settings = deep_merge(settings, overrides)
    elif overrides:
        log.warning("ignoring config_overrides that are not an object",
                    extra={"op": "config.render", "satellite_id": state.id})
    return settings


async def _resource_limits(state: SatelliteState) -> dict[str, Any]:
    if not state.is_global:
        team = None if state.team_id is None else await Team.get_or_none(id=state.team_id)
        return narrowed_limits(team)
    limits: dict[str, Any] = dict(DEFAULT_RESOURCE_LIMITS)
    teams = await Team.filter(
        Q(max_processes__isnull=False)
        | Q(max_memory_per_process_mb__isnull=False)
        | Q(max_cpu_percent__isnull=False)
    ).order_by("id")
    limits["team_limits"] = {team.id: narrowed_limits(team) for team in teams}
    return limits


def narrowed_limits(team: Team | None) -> dict[str, int | float]:
    """The global defaults, each replaced by the team's own limit where that is smaller."""
    limits = dict(DEFAULT_RESOURCE_LIMITS)
    if team is None:
        return limits
    for name in _LIMIT_FIELDS:
        own = getattr(team, name)
        if own is not None and own < limits[name]:
            limits[name] = own
    return limits


def deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Objects merge key by key (recursively); any other override value replaces the base."""
    merged = dict(base)
    for key, value in overrides.items():
        current = merged.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = value
    return merged


__all__ = [
    "DEFAULT_LOGGING",
    "DEFAULT_RESOURCE_LIMITS",
    "POLLING_INTERVALS",
    "RenderedConfig",
    "canonical_json",
    "deep_merge",
    "narrowed_limits",
    "render_satellite_config",
    "render_satellite_settings",
]
