"""Team installations of catalogue servers, their owners' configs, revisions and rollback.

Every use case here ends the same way: one transaction writes the row and, when
the team or owner configuration changed, a numbered revision (a snapshot with
secrets still sealed); then the satellites that serve the installation (before
and after the change) get one `configure` each (`config_push`). A save that
changes nothing writes nothing and pushes nothing.

The owner's user config is part of the installation's rendering (docs/protocol.md
§9: template → team → user, the user being the installation's owner), so it is
part of every revision and of every rollback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from app.errors import Conflict, NotFound, ValidationError
from app.models import (
    McpInstallation,
    McpInstallationRevision,
    McpServer,
    McpUserConfig,
    Satellite,
    Team,
    User,
)
from app.models.enums import SatelliteStatus, SatelliteType
from app.services.commands.config_push import (
    INSTALLATION_CREATED,
    INSTALLATION_DELETED,
    INSTALLATION_UPDATED,
    push_configure,
    serving_satellite_ids,
)
from app.services.common.actors import Actor
from app.services.common.audit import record_audit
from app.services.mcp.config_merge import TEMPLATE_FIELDS, missing_required
from app.services.mcp.tier_values import checked_settings, empty_tier, seal_tier, tier_of

if TYPE_CHECKING:
    from app.services.fleet.context import FleetContext

MAX_NAME_LENGTH = 200
AWAITING_CONFIG = "awaiting_config"
PROVISIONING = "provisioning"


class _Unset:
    """Marks an optional argument that was not given (`None` means "clear")."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


@dataclass(frozen=True, slots=True)
class InstallationChange:
    """What a caller sets; each field left out (`None`, or UNSET for the clearable
    ones) keeps its current value. Tier kinds given replace that kind whole."""

    name: str | None = None
    args: list[str] | None = None
    env: dict[str, str] | None = None
    headers: dict[str, str] | None = None
    url_query_params: dict[str, str] | None = None
    settings: dict[str, Any] | None = None
    enabled: bool | None = None
    pinned_satellite_id: Any = UNSET
    owner_id: Any = UNSET

    def tier(self) -> dict[str, Any]:
        return {"args": self.args, "env": self.env, "headers": self.headers,
                "url_query_params": self.url_query_params}


@dataclass(slots=True)
class _State:
    """An installation's full configuration as one comparable value (a revision's snapshot)."""

    name: str
    team_tier: dict[str, Any]
    settings: dict[str, Any]
    enabled: bool
    owner_id: str | None
    pinned_satellite_id: str | None
    user_tier: dict[str, Any] | None = field(default=None)

    def snapshot(self) -> dict[str, Any]:
        return {
            "name": self.name, **self.team_tier, "settings": self.settings,
            "enabled": self.enabled, "owner_id": self.owner_id,
            "pinned_satellite_id": self.pinned_satellite_id, "user": self.user_tier,
        }

    @classmethod
    def from_snapshot(cls, snapshot: dict[str, Any]) -> _State:
        return cls(
            name=snapshot["name"],
            team_tier={kind: snapshot.get(kind) or empty_tier()[kind] for kind in empty_tier()},
            settings=dict(snapshot.get("settings") or {}),
            enabled=bool(snapshot.get("enabled", True)),
            owner_id=snapshot.get("owner_id"),
            pinned_satellite_id=snapshot.get("pinned_satellite_id"),
            user_tier=snapshot.get("user") or (
                empty_tier() if snapshot.get("owner_id") is not None else None
            ),
        )


def template_of(server: McpServer) -> dict[str, Any]:
    """The merge's template mapping for a catalogue row."""
    return {name: getattr(server, name) for name in TEMPLATE_FIELDS}


def readiness_status(missing: bool, current_status: str) -> str:
    """`awaiting_config` while a required field is missing; back to provisioning after."""
    if missing:
        return AWAITING_CONFIG
    return PROVISIONING if current_status == AWAITING_CONFIG else current_status


def readiness(template: dict[str, Any], state: _State, current_status: str) -> str:
    return readiness_status(
        bool(missing_required(template, state.team_tier, state.user_tier or {})), current_status
    )


# ---- lookups ------------------------------------------------------------------------


async def get_installation(installation_id: str) -> McpInstallation:
    installation = await McpInstallation.get_or_none(id=installation_id).select_related(
        "server", "team"
    )
    if installation is None:
        raise NotFound("Installation not found", code="installation_not_found")
    return installation


async def list_installations(team_id: str | None = None) -> list[McpInstallation]:
    query = McpInstallation.all() if team_id is None else McpInstallation.filter(team_id=team_id)
    return await query.select_related("server", "team").order_by("created_at", "id")


async def list_revisions(installation_id: str) -> list[McpInstallationRevision]:
    await get_installation(installation_id)
    return await McpInstallationRevision.filter(
        installation_id=installation_id
    ).order_by("-revision")


async def missing_fields(installation: McpInstallation) -> list[str]:
    """What still keeps an installation `awaiting_config` (empty when nothing does)."""
    return missing_required(
        template_of(installation.server), tier_of(installation),
        await _owner_tier(installation.id, installation.owner_id)  # type: ignore[attr-defined]
        or {},
    )


async def _owner_tier(installation_id: str, owner_id: str | None) -> dict[str, Any] | None:
    if owner_id is None:
        return None
    row = await McpUserConfig.get_or_none(installation_id=installation_id, user_id=owner_id)
    return empty_tier() if row is None else tier_of(row)


async def _current_state(installation: McpInstallation) -> _State:
    owner_id: str | None = installation.owner_id  # type: ignore[attr-defined]
    return _State(
        name=installation.name,
        team_tier=tier_of(installation),
        settings=dict(installation.settings or {}),
        enabled=installation.enabled,
        owner_id=owner_id,
        pinned_satellite_id=installation.pinned_satellite_id,  # type: ignore[attr-defined]
        user_tier=await _owner_tier(installation.id, owner_id),
    )


# ---- checks -------------------------------------------------------------------------


def _checked_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise ValidationError(
            f"Installation names have 1 to {MAX_NAME_LENGTH} characters",
            details=[{"field": "name", "message": "invalid length"}],
        )
    return name


async def _checked_pin(team_id: str, satellite_id: str | None) -> str | None:
    """A pin names a live satellite that may serve the team (global, or the team's own)."""
    if satellite_id is None:
        return None
    satellite = await Satellite.get_or_none(id=satellite_id)
    if satellite is None or satellite.status is SatelliteStatus.DELETED:
        raise NotFound("Satellite not found", code="satellite_not_found")
    own_team: str | None = satellite.team_id  # type: ignore[attr-defined]
    if satellite.satellite_type is not SatelliteType.GLOBAL and own_team != team_id:
        raise ValidationError(
            "An installation can be pinned only to a global satellite or one of its "
            "team's own satellites",
            details=[{"field": "pinned_satellite_id", "message": "satellite cannot serve team"}],
        )
    return satellite.id


async def _checked_owner(user_id: str | None) -> str | None:
    if user_id is not None and not await User.exists(id=user_id):
        raise NotFound("User not found", code="user_not_found")
    return user_id


# ---- use cases ----------------------------------------------------------------------


async def install_server(
    rt: FleetContext,
    *,
    team_id: str,
    server_id: str,
    change: InstallationChange,
    actor: Actor,
) -> McpInstallation:
    """Install a catalogue server for a team (revision 1) and configure its satellites.

    The owner defaults to the acting user (none for the CLI). The team tier is
    checked against the template's team schemas; a missing required field makes
    the installation `awaiting_config` (left out of every config until set).
    """
    team = await Team.get_or_none(id=team_id)
    if team is None:
        raise NotFound("Team not found", code="team_not_found")
    server = await McpServer.get_or_none(id=server_id)
    if server is None:
        raise NotFound("MCP server not found", code="mcp_server_not_found")
    template = template_of(server)
    owner_id = change.owner_id if change.owner_id is not UNSET else actor.user_id
    state = _State(
        name=_checked_name(change.name if change.name is not None else server.name),
        team_tier=seal_tier(rt.secrets, template, "team", change.tier(), empty_tier()),
        settings=checked_settings(change.settings if change.settings is not None else {}),
        enabled=True if change.enabled is None else change.enabled,
        owner_id=await _checked_owner(owner_id),
        pinned_satellite_id=await _checked_pin(
            team.id, None if change.pinned_satellite_id is UNSET else change.pinned_satellite_id
        ),
    )
    async with in_transaction() as connection:
        installation = await McpInstallation.create(
            team_id=team.id, server_id=server.id, name=state.name,
            owner_id=state.owner_id, pinned_satellite_id=state.pinned_satellite_id,
            settings=state.settings, enabled=state.enabled,
            status=readiness(template, state, PROVISIONING), revision=1,
            **state.team_tier, using_db=connection,
        )
        await McpInstallationRevision.create(
            installation_id=installation.id, revision=1, snapshot=state.snapshot(),
            actor_id=actor.user_id, using_db=connection,
        )
    await record_audit("installation.created", actor=actor, object_type="mcp_installation",
                       object_id=installation.id, team_id=team.id,
                       details={"server_slug": server.slug, "name": state.name})
    await push_configure(
        rt, await _serving(team.id, state), event=INSTALLATION_CREATED,
        installation_id=installation.id, team_id=team.id,
    )
    return await get_installation(installation.id)


async def update_installation(
    rt: FleetContext, installation_id: str, change: InstallationChange, *, actor: Actor
) -> McpInstallation:
    """Change an installation's team tier, settings, name, enabled flag, pin or owner."""
    installation = await get_installation(installation_id)
    template = template_of(installation.server)
    before = await _current_state(installation)
    owner_id = before.owner_id if change.owner_id is UNSET else await _checked_owner(
        change.owner_id
    )
    after = _State(
        name=before.name if change.name is None else _checked_name(change.name),
        team_tier=seal_tier(rt.secrets, template, "team", change.tier(), before.team_tier),
        settings=before.settings if change.settings is None else checked_settings(
            change.settings
        ),
        enabled=before.enabled if change.enabled is None else change.enabled,
        owner_id=owner_id,
        pinned_satellite_id=before.pinned_satellite_id
        if change.pinned_satellite_id is UNSET
        else await _checked_pin(installation.team.id, change.pinned_satellite_id),
        user_tier=before.user_tier if owner_id == before.owner_id else await _owner_tier(
            installation.id, owner_id
        ),
    )
    return await _apply(rt, installation, template, before, after, actor=actor,
                        action="installation.updated")


async def set_user_config(
    rt: FleetContext,
    installation_id: str,
    *,
    user_id: str,
    values: dict[str, Any],
    actor: Actor,
) -> McpInstallation:
    """Save a user's own tier for an installation (checked against the user schemas).

    Only the owner's tier is rendered; saving it makes a revision and configures
    the satellites. Other users' tiers are stored for when they own it.
    """
    installation = await get_installation(installation_id)
    template = template_of(installation.server)
    if not await User.exists(id=user_id):
        raise NotFound("User not found", code="user_not_found")
    existing = await McpUserConfig.get_or_none(installation_id=installation.id, user_id=user_id)
    stored = empty_tier() if existing is None else tier_of(existing)
    sealed = seal_tier(rt.secrets, template, "user", values, stored)
    owner_id: str | None = installation.owner_id  # type: ignore[attr-defined]
    if user_id != owner_id:
        if sealed != stored:
            await _save_user_tier(installation.id, user_id, sealed, existing, rt.clock.now())
            await record_audit("installation.user_config_set", actor=actor,
                               object_type="mcp_installation", object_id=installation.id,
                               team_id=installation.team.id, details={"user_id": user_id})
        return installation
    before = await _current_state(installation)
    after = _State(**{**_fields(before), "user_tier": sealed})
    return await _apply(rt, installation, template, before, after, actor=actor,
                        action="installation.user_config_set")


async def rollback_installation(
    rt: FleetContext, installation_id: str, revision: int, *, actor: Actor
) -> McpInstallation:
    """Restore a revision's configuration as a new revision and configure the satellites.

    A pin to a satellite deleted since is dropped; an owner deleted since is too.
    """
    installation = await get_installation(installation_id)
    row = await McpInstallationRevision.get_or_none(
        installation_id=installation.id, revision=revision
    )
    if row is None:
        raise NotFound("Revision not found", code="revision_not_found")
    restored = _State.from_snapshot(row.snapshot)
    pin = restored.pinned_satellite_id
    if pin is not None and not await Satellite.filter(
        ~Q(status=SatelliteStatus.DELETED), id=pin
    ).exists():
        restored.pinned_satellite_id = None
    if restored.owner_id is not None and not await User.exists(id=restored.owner_id):
        restored.owner_id, restored.user_tier = None, None
    before = await _current_state(installation)
    return await _apply(rt, installation, template_of(installation.server), before, restored,
                        actor=actor, action="installation.rolled_back",
                        details={"restored_revision": revision})


async def delete_installation(rt: FleetContext, installation_id: str, *, actor: Actor) -> None:
    """Remove an installation (its revisions, user configs and tools go with it)."""
    installation = await get_installation(installation_id)
    team_id = installation.team.id
    targets = await serving_satellite_ids(
        team_id, installation.pinned_satellite_id  # type: ignore[attr-defined]
    )
    await McpInstallation.filter(id=installation.id).delete()
    await record_audit("installation.deleted", actor=actor, object_type="mcp_installation",
                       object_id=installation.id, team_id=team_id,
                       details={"server_slug": installation.server.slug})
    await push_configure(rt, targets, event=INSTALLATION_DELETED,
                         installation_id=installation.id, team_id=team_id)


# ---- the shared write -----------------------------------------------------------------


def _fields(state: _State) -> dict[str, Any]:
    return {name: getattr(state, name) for name in _State.__dataclass_fields__}


async def _serving(team_id: str, state: _State) -> set[str]:
    return await serving_satellite_ids(team_id, state.pinned_satellite_id)


async def _save_user_tier(installation_id: str, user_id: str, tier: dict[str, Any],
                          existing: McpUserConfig | None, now: datetime,
                          connection: BaseDBAsyncClient | None = None) -> None:
    if existing is None:
        await McpUserConfig.create(installation_id=installation_id, user_id=user_id, **tier,
                                   using_db=connection)
    else:
        await McpUserConfig.filter(id=existing.id).using_db(connection).update(
            **tier, updated_at=now
        )


async def _apply(
    rt: FleetContext,
    installation: McpInstallation,
    template: dict[str, Any],
    before: _State,
    after: _State,
    *,
    actor: Actor,
    action: str,
    details: dict[str, Any] | None = None,
) -> McpInstallation:
    """Write `after` as the next revision (when it differs) and configure the satellites.

    The row is updated only if nobody changed it since it was read (its revision
    is the one read); otherwise 409 `installation_changed`, nothing written.
    """
    if after == before:
        return installation
    team_id = installation.team.id
    revision = installation.revision + 1
    async with in_transaction() as connection:
        updated = await McpInstallation.filter(
            id=installation.id, revision=installation.revision
        ).using_db(connection).update(
            name=after.name, settings=after.settings, enabled=after.enabled,
            owner_id=after.owner_id, pinned_satellite_id=after.pinned_satellite_id,
            status=readiness(template, after, installation.status), revision=revision,
            updated_at=rt.clock.now(), **after.team_tier,
        )
        if not updated:
            raise Conflict("The installation was changed meanwhile; reload and retry",
                           code="installation_changed")
        if after.owner_id is not None and after.user_tier is not None:
            existing = await McpUserConfig.filter(
                installation_id=installation.id, user_id=after.owner_id
            ).using_db(connection).first()
            if existing is None or tier_of(existing) != after.user_tier:
                await _save_user_tier(installation.id, after.owner_id, after.user_tier, existing,
                                      rt.clock.now(), connection)
        await McpInstallationRevision.create(
            installation_id=installation.id, revision=revision, snapshot=after.snapshot(),
            actor_id=actor.user_id, using_db=connection,
        )
    await record_audit(action, actor=actor, object_type="mcp_installation",
                       object_id=installation.id, team_id=team_id,
                       details={"revision": revision, **(details or {})})
    targets = await _serving(team_id, before) | await _serving(team_id, after)
    await push_configure(rt, targets, event=INSTALLATION_UPDATED,
                         installation_id=installation.id, team_id=team_id)
    return await get_installation(installation.id)


__all__ = [
    "AWAITING_CONFIG",
    "UNSET",
    "InstallationChange",
    "delete_installation",
    "get_installation",
    "install_server",
    "list_installations",
    "list_revisions",
    "missing_fields",
    "readiness",
    "readiness_status",
    "rollback_installation",
    "set_user_config",
    "template_of",
    "update_installation",
]
