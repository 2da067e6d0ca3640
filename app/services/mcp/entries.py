"""The `mcp_servers` part of a satellite's config: one entry per installation it serves.

Scope (docs/protocol.md §9): a global satellite gets the enabled installations of
every team, a team satellite only its own team's; either way an installation
pinned to another satellite is left out. Each entry is the template → team →
owner merge (`config_merge.merge_entry`) with secrets opened for this response
only.

An installation with a missing required field is left out and marked
`awaiting_config`. One that fails to render (a secret the key ring cannot open,
a broken template) is served from its last good rendering, kept sealed in the
database, so the client does not stop a running server; with none it is left
out. Either way the failure is logged and recorded on the installation, and the
response never fails. The bookkeeping writes happen only when something changed,
so a steady fleet fetching its config writes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tortoise.expressions import Q

from app.auth.secrets import SecretDecryptionError
from app.models import McpInstallation, McpUserConfig
from app.services.fleet.state import SatelliteState
from app.services.mcp.config_merge import (
    MergedEntry,
    MergeError,
    merge_entry,
    missing_required,
    process_id,
)
from app.services.mcp.installations import AWAITING_CONFIG, readiness_status, template_of
from app.services.mcp.tier_values import empty_tier, tier_of

if TYPE_CHECKING:
    from app.services.fleet.context import FleetContext

log = logging.getLogger(__name__)

_SEALED = "sealed"
_DIGEST = "digest"


@dataclass(frozen=True, slots=True)
class _Rendered:
    process_id: str
    entry: dict[str, Any] | None


def _scope(state: SatelliteState) -> Q:
    scope = Q(enabled=True) & (
        Q(pinned_satellite_id__isnull=True) | Q(pinned_satellite_id=state.id)
    )
    if not state.is_global:
        scope &= Q(team_id=state.team_id)
    return scope


async def render_mcp_servers(rt: FleetContext, state: SatelliteState) -> dict[str, Any]:
    """Entries keyed by process id `{server_slug}-{team_slug}-{installation_id}`."""
    installations = await McpInstallation.filter(_scope(state)).select_related(
        "server", "team"
    ).order_by("id")
    if not installations:
        return {}
    tiers_by_installation = await owner_tiers(installations)
    servers: dict[str, Any] = {}
    for installation in installations:
        rendered = await _render_one(rt, installation, tiers_by_installation.get(installation.id))
        if rendered.entry is not None:
            servers[rendered.process_id] = rendered.entry
    return servers


async def owner_tiers(installations: list[McpInstallation]) -> dict[str, dict[str, Any]]:
    """Each installation's owner tier, in one query."""
    owners = {
        row.id: row.owner_id for row in installations  # type: ignore[attr-defined]
        if row.owner_id is not None  # type: ignore[attr-defined]
    }
    if not owners:
        return {}
    configs = await McpUserConfig.filter(
        installation_id__in=list(owners), user_id__in=list(set(owners.values()))
    )
    return {
        config.installation_id: tier_of(config)  # type: ignore[attr-defined]
        for config in configs
        if owners.get(config.installation_id) == config.user_id  # type: ignore[attr-defined]
    }


@dataclass(frozen=True, slots=True)
class Tiers:
    """What an installation's entry is merged from, and what it still lacks."""

    template: dict[str, Any]
    team: dict[str, Any]
    user: dict[str, Any]
    missing: list[str]


def tiers_of(installation: McpInstallation, owner_tier: dict[str, Any] | None) -> Tiers:
    """The merge inputs of an installation loaded with its server (owner tier given)."""
    template = template_of(installation.server)
    team, user = tier_of(installation), owner_tier or empty_tier()
    return Tiers(template, team, user, missing_required(template, team, user))


def entry_of(installation: McpInstallation, merged: MergedEntry) -> dict[str, Any]:
    """The config entry (docs/protocol.md §9) of an installation loaded with server and team."""
    server, team = installation.server, installation.team
    return {
        "installation_id": installation.id,
        "installation_name": installation.name,
        "team_id": team.id,
        "team_slug": team.slug,
        "server_slug": server.slug,
        "server_name": server.name,
        "enabled": installation.enabled,
        "settings": installation.settings or {},
        **merged.to_wire(),
    }


async def _render_one(
    rt: FleetContext, installation: McpInstallation, owner_tier: dict[str, Any] | None
) -> _Rendered:
    pid = process_id(installation.server.slug, installation.team.slug, installation.id)
    tiers = tiers_of(installation, owner_tier)
    status = readiness_status(bool(tiers.missing), installation.status)
    if status != installation.status:
        await McpInstallation.filter(id=installation.id, status=installation.status).update(
            status=status
        )
    if status == AWAITING_CONFIG:
        return _Rendered(pid, None)
    try:
        merged = merge_entry(tiers.template, tiers.team, tiers.user, decrypt=rt.secrets.decrypt)
    except (MergeError, SecretDecryptionError) as error:
        return _Rendered(pid, await _last_good(rt, installation, str(error)))
    entry = entry_of(installation, merged)
    await _remember(rt, installation, entry)
    return _Rendered(pid, entry)


def _canonical(entry: dict[str, Any]) -> bytes:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _digest(rt: FleetContext, entry: dict[str, Any]) -> str:
    """A keyed digest of an entry: compares renderings without opening the sealed one
    (and, being keyed, says nothing about the secrets inside)."""
    return hmac.new(rt.keys.rendering_digest, _canonical(entry), hashlib.sha256).hexdigest()


def _open_last_good(rt: FleetContext, installation: McpInstallation) -> dict[str, Any] | None:
    stored = installation.last_good_rendering
    if not isinstance(stored, dict) or not isinstance(stored.get(_SEALED), str):
        return None
    try:
        entry = json.loads(rt.secrets.decrypt(stored[_SEALED]))
    except (SecretDecryptionError, ValueError):
        return None
    return entry if isinstance(entry, dict) else None


async def _remember(rt: FleetContext, installation: McpInstallation, entry: dict[str, Any]) -> None:
    """Keep `entry` (sealed: it holds secrets) as the last good rendering, if it is new."""
    digest = _digest(rt, entry)
    stored = installation.last_good_rendering
    if isinstance(stored, dict) and stored.get(_DIGEST) == digest and (
        not installation.render_error
    ):
        return
    sealed = rt.secrets.encrypt(_canonical(entry).decode())
    await McpInstallation.filter(id=installation.id).update(
        last_good_rendering={_SEALED: sealed, _DIGEST: digest}, render_error=None,
    )


async def _last_good(rt: FleetContext, installation: McpInstallation, error: str
                     ) -> dict[str, Any] | None:
    entry = _open_last_good(rt, installation)
    if installation.render_error != error:
        log.warning("installation cannot be rendered; %s", (
            "serving its last good rendering" if entry else "left out (no good rendering yet)"
        ), extra={"op": "config.render", "installation_id": installation.id, "error": error})
        await McpInstallation.filter(id=installation.id).update(render_error=error)
    return entry


__all__ = ["Tiers", "entry_of", "owner_tiers", "render_mcp_servers", "tiers_of"]
