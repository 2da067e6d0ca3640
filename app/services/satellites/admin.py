"""Satellite records and administrative actions (docs/operations.md §3: disable, enable, delete,
rotate-key).

Every administrative change goes through `rt.fleet.apply_admin_change` (one
conditional UPDATE guarded by the status that was read, revision + 1, memory
refreshed, other instances told), so a change made concurrently by another
process is never overwritten: the action re-reads and tries again.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from typing import TYPE_CHECKING, Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F

from app.auth.api_keys import generate_api_key, hash_api_key
from app.bus import Channels
from app.errors import Conflict, NotFound, ValidationError
from app.models import Satellite
from app.models.enums import SatelliteStatus, SatelliteType
from app.models.ids import new_id
from app.services.commands.config_push import INSTALLATION_UPDATED, push_configure
from app.services.commands.queue import cancel_open_commands
from app.services.common.actors import Actor
from app.services.common.audit import record_audit
from app.services.common.clock import iso
from app.services.common.json_objects import checked_json_object
from app.services.fleet.state import SatelliteState
from app.wire.registration import (
    DEFAULT_CAPABILITIES,
    NAME_MAX_LENGTH,
    NAME_MIN_LENGTH,
)

if TYPE_CHECKING:
    from app.services.fleet.context import FleetContext

_NAME_RE = re.compile(r"[a-z0-9_-]+")
# An admin action re-reads and retries when another writer changed the row in between.
_ATTEMPTS = 5


def validate_satellite_name(name: str) -> str:
    """Names are 10–32 characters of `a-z 0-9 _ -` (docs/protocol.md §4)."""
    if not NAME_MIN_LENGTH <= len(name) <= NAME_MAX_LENGTH or not _NAME_RE.fullmatch(name):
        raise ValidationError(
            f"Satellite names are {NAME_MIN_LENGTH}-{NAME_MAX_LENGTH} characters of a-z, 0-9, "
            "'_' and '-'",
            details=[{"field": "name", "message": "invalid satellite name"}],
        )
    return name


def deleted_name(satellite_id: str) -> str:
    """The name a deleted satellite keeps, freeing its real name for reuse."""
    return f"deleted-{satellite_id}"


async def new_api_key(satellite_type: SatelliteType) -> tuple[str, str, str]:
    """`(api_key, key_id, argon2_hash)`; the hash is computed in a thread."""
    api_key, key_id = generate_api_key(satellite_type)
    return api_key, key_id, await asyncio.to_thread(hash_api_key, api_key)


async def insert_satellite(
    *,
    satellite_id: str,
    name: str,
    satellite_type: SatelliteType,
    team_id: str | None,
    key_id: str,
    key_hash: str,
    capabilities: list[str] | None = None,
    satellite_url: str | None = None,
    system_info: dict[str, Any] | None = None,
    using_db: BaseDBAsyncClient | None = None,
) -> Satellite:
    """Insert an `inactive` satellite row (raises tortoise's IntegrityError on a taken name).

    Low level, for callers that insert inside their own transaction (registration);
    they apply the row to the fleet after the commit.
    """
    return await Satellite.create(
        using_db=using_db,
        id=satellite_id,
        name=name,
        satellite_type=satellite_type,
        team_id=team_id,
        capabilities=list(capabilities if capabilities is not None else DEFAULT_CAPABILITIES),
        satellite_url=satellite_url or None,
        system_info=system_info or {},
        api_key_id=key_id,
        api_key_hash=key_hash,
    )


async def create_satellite(
    rt: FleetContext,
    *,
    name: str,
    satellite_type: SatelliteType,
    team_id: str | None,
    capabilities: list[str] | None = None,
    satellite_url: str | None = None,
    system_info: dict[str, Any] | None = None,
) -> tuple[Satellite, str]:
    """Create an `inactive` satellite with a fresh API key; returns the row and the key.

    The caller owns the surrounding rules (token checks). A taken name answers
    409 `satellite_name_taken`.
    """
    api_key, key_id, key_hash = await new_api_key(satellite_type)
    try:
        row = await insert_satellite(
            satellite_id=new_id(),
            name=name,
            satellite_type=satellite_type,
            team_id=team_id,
            key_id=key_id,
            key_hash=key_hash,
            capabilities=capabilities,
            satellite_url=satellite_url,
            system_info=system_info,
        )
    except IntegrityError as error:
        if await Satellite.exists(name=name):
            raise name_taken(name) from error
        raise
    rt.fleet.apply_row(row)
    return row, api_key


def name_taken(name: str) -> Conflict:
    return Conflict(f"A satellite named '{name}' already exists", code="satellite_name_taken")


# ---- reads -----------------------------------------------------------------------


async def get_satellite(satellite_id: str) -> Satellite:
    """The satellite row; a deleted satellite counts as absent (NotFound)."""
    row = await Satellite.get_or_none(id=satellite_id)
    if row is None or row.status is SatelliteStatus.DELETED:
        raise NotFound("Satellite not found", code="satellite_not_found")
    return row


async def list_satellites() -> list[Satellite]:
    """Every satellite that is not deleted, ordered by name."""
    return await Satellite.exclude(status=SatelliteStatus.DELETED).order_by("name")


# ---- administrative actions ---------------------------------------------------------


async def publish_status(
    rt: FleetContext,
    *,
    satellite_id: str,
    team_id: str | None,
    status: SatelliteStatus,
    previous_status: SatelliteStatus,
    online: bool,
) -> None:
    """Tell dashboards that a satellite's administrative status changed (after the commit)."""
    await rt.bus.publish(
        Channels.SATELLITE_STATUS,
        {
            "satellite_id": satellite_id,
            "team_id": team_id,
            "status": status.value,
            "online": online,
            "previous_status": previous_status.value,
            "at": iso(rt.clock.now()),
        },
    )


def _target_status(
    row: Satellite, state: SatelliteState | None, wanted: SatelliteStatus
) -> SatelliteStatus:
    if wanted is not SatelliteStatus.ACTIVE:
        return wanted
    if row.status in (SatelliteStatus.ACTIVE, SatelliteStatus.INACTIVE):
        return row.status  # already enabled
    # "enable": active again if the satellite has ever reported in, else waiting for it.
    heartbeated = row.last_heartbeat_at is not None or (
        state is not None and state.last_heartbeat_at is not None
    )
    return SatelliteStatus.ACTIVE if heartbeated else SatelliteStatus.INACTIVE


async def set_satellite_status(
    rt: FleetContext, satellite_id: str, status: SatelliteStatus, *, actor: Actor
) -> SatelliteState:
    """Disable, enable, or put a satellite in maintenance.

    `active` means "enable": a disabled (or maintenance) satellite becomes
    `active` if it has ever sent a heartbeat, else `inactive` (its next
    heartbeat activates it); an enabled one is left as it is. `disabled`
    takes effect at once: every route answers 401 and cached keys are evicted.
    `maintenance` is kept by heartbeats. Deleting is `delete_satellite`.
    Unknown or deleted ids → NotFound. Setting the current status is a no-op.
    """
    if status is SatelliteStatus.DELETED:
        raise ValidationError("Use delete_satellite to delete a satellite")
    for _ in range(_ATTEMPTS):
        row = await get_satellite(satellite_id)
        previous = row.status
        target = _target_status(row, rt.fleet.get(satellite_id), status)
        if target is previous:
            current = rt.fleet.get(satellite_id) or rt.fleet.apply_row(row)
            assert current is not None
            return current
        state = await rt.fleet.apply_admin_change(
            satellite_id, f"status:{target.value}", only_if_status=previous, status=target
        )
        if state is None:
            continue  # changed under us: read again
        if target is SatelliteStatus.DISABLED:
            rt.key_cache.evict_satellite(satellite_id)
        state.wakeup.set()  # a held long poll re-checks the satellite
        await publish_status(
            rt,
            satellite_id=satellite_id,
            team_id=state.team_id,
            status=target,
            previous_status=previous,
            online=state.online,
        )
        await record_audit(
            "satellite.status_changed",
            actor=actor,
            object_type="satellite",
            object_id=satellite_id,
            team_id=state.team_id,
            details={"name": state.name, "previous_status": previous.value, "status": target.value},
        )
        return state
    raise Conflict("The satellite changed concurrently; try again", code="concurrent_change")


async def delete_satellite(rt: FleetContext, satellite_id: str, *, actor: Actor) -> None:
    """Delete a satellite: its key is revoked at once, its name is freed, its history stays.

    The row is kept with status `deleted`, no key and the name `deleted-<id>`
    (the old name is in the audit entry). Unknown or already deleted → NotFound.
    """
    for _ in range(_ATTEMPTS):
        row = await get_satellite(satellite_id)
        await rt.fleet.apply_admin_change(
            satellite_id,
            "deleted",
            only_if_status=row.status,
            status=SatelliteStatus.DELETED,
            name=deleted_name(satellite_id),
            api_key_id=None,
            api_key_hash=None,
            key_generation=F("key_generation") + 1,
            online=False,
            deleted_at=rt.clock.now(),
        )
        # apply_admin_change answers None both for "no row changed" and for a row that
        # is now deleted (memory forgets it): the revision tells whether ours was applied.
        after = await Satellite.get_or_none(id=satellite_id)
        if (
            after is None
            or after.status is not SatelliteStatus.DELETED
            or after.revision != row.revision + 1
        ):
            continue
        rt.key_cache.evict_satellite(satellite_id)
        await publish_status(
            rt,
            satellite_id=satellite_id,
            team_id=row.team_id,  # type: ignore[attr-defined]
            status=SatelliteStatus.DELETED,
            previous_status=row.status,
            online=False,
        )
        await record_audit(
            "satellite.deleted",
            actor=actor,
            object_type="satellite",
            object_id=satellite_id,
            team_id=row.team_id,  # type: ignore[attr-defined]
            details={"name": row.name, "previous_status": row.status.value},
        )
        await cancel_open_commands(rt, satellite_id, "satellite deleted")
        return
    raise Conflict("The satellite changed concurrently; try again", code="concurrent_change")


async def rotate_satellite_key(rt: FleetContext, satellite_id: str, *, actor: Actor) -> str:
    """Give a satellite a new API key, returned once; the old key is refused at once.

    The key generation goes up with the new key, so every instance's cached
    verification of the old key stops matching. Unknown or deleted → NotFound.
    Until the new key first authenticates (`rotated_key_unused`), a satellite
    that lost its key this way may re-register with an unbound token of its scope
    (docs/protocol.md §4), as the reference client does after a 401.
    """
    row = await get_satellite(satellite_id)
    api_key, key_id, key_hash = await new_api_key(row.satellite_type)
    for _ in range(_ATTEMPTS):
        state = await rt.fleet.apply_admin_change(
            satellite_id,
            "key_rotated",
            only_if_status=row.status,
            api_key_id=key_id,
            api_key_hash=key_hash,
            key_generation=F("key_generation") + 1,
            rotated_key_unused=True,
        )
        if state is None:
            row = await get_satellite(satellite_id)
            continue
        rt.key_cache.evict_satellite(satellite_id)
        await record_audit(
            "satellite.key_rotated",
            actor=actor,
            object_type="satellite",
            object_id=satellite_id,
            team_id=state.team_id,
            details={"name": state.name, "key_id": key_id},
        )
        return api_key
    raise Conflict("The satellite changed concurrently; try again", code="concurrent_change")


MAX_OVERRIDES_BYTES = 16_384


async def set_config_overrides(
    rt: FleetContext, satellite_id: str, overrides: dict[str, Any], *, actor: Actor
) -> SatelliteState:
    """Replace a satellite's `satellite_config` overrides (deep-merged over the defaults).

    A JSON object of at most 16 KiB; `{}` removes every override. When they
    change, the satellite gets a `configure` so it re-fetches its config.
    """
    checked = checked_json_object(overrides, what="config_overrides", field="config_overrides",
                                  max_bytes=MAX_OVERRIDES_BYTES)
    row = await get_satellite(satellite_id)
    current = rt.fleet.get(satellite_id) or rt.fleet.apply_row(row)
    assert current is not None
    if row.config_overrides == checked:
        return current
    state = await rt.fleet.apply_admin_change(satellite_id, "config_overrides",
                                              config_overrides=checked)
    if state is None:
        raise NotFound("Satellite not found", code="satellite_not_found")
    await record_audit("satellite.config_overrides_set", actor=actor, object_type="satellite",
                       object_id=satellite_id, team_id=state.team_id,
                       details={"keys": sorted(checked)})
    await push_configure(rt, [satellite_id], event=INSTALLATION_UPDATED, installation_id=None,
                         team_id=state.team_id)
    return state


# ---- details people edit: name, allow-list, labels (docs/graphql.md §3) ----

MAX_ALLOWED_CIDRS = 64
MAX_LABELS = 32
MAX_LABEL_KEY_LENGTH = 63
MAX_LABEL_VALUE_LENGTH = 255
_LABEL_KEY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\/-]*")


def checked_allowed_cidrs(cidrs: Any) -> list[str]:
    """An IP allow-list: at most 64 CIDRs (IPv4 or IPv6), each parsed and normalised
    (`10.0.0.1/8` → `10.0.0.0/8`), duplicates dropped; `[]` allows every address."""
    if not isinstance(cidrs, list) or len(cidrs) > MAX_ALLOWED_CIDRS:
        raise ValidationError(f"allowed_cidrs is a list of at most {MAX_ALLOWED_CIDRS} CIDRs",
                              details=[{"field": "allowed_cidrs", "message": "invalid list"}])
    normalised: list[str] = []
    for cidr in cidrs:
        try:
            network = str(ipaddress.ip_network(str(cidr).strip(), strict=False))
        except ValueError as error:
            raise ValidationError(f"Not a CIDR: {str(cidr)[:64]!r}",
                                  details=[{"field": "allowed_cidrs",
                                            "message": "invalid CIDR"}]) from error
        if not isinstance(cidr, str):
            raise ValidationError("CIDRs are strings",
                                  details=[{"field": "allowed_cidrs", "message": "not a string"}])
        if network not in normalised:
            normalised.append(network)
    return normalised


def checked_labels(labels: Any) -> dict[str, str]:
    """Free-form labels: a JSON object of at most 32 string values (≤ 255 characters)
    under keys of 1–63 characters (`A-Z a-z 0-9 _ . / -`, starting with a letter or
    digit); `{}` removes every label."""
    def refused(message: str) -> ValidationError:
        return ValidationError(message, details=[{"field": "labels", "message": message}])

    if not isinstance(labels, dict):
        raise refused("labels must be a JSON object")
    if len(labels) > MAX_LABELS:
        raise refused(f"at most {MAX_LABELS} labels")
    for key, value in labels.items():
        if not (isinstance(key, str) and len(key) <= MAX_LABEL_KEY_LENGTH
                and _LABEL_KEY_RE.fullmatch(key)):
            raise refused(f"label keys have 1-{MAX_LABEL_KEY_LENGTH} characters of "
                          "A-Z, a-z, 0-9, '_', '.', '/', '-', starting with a letter or digit")
        if not isinstance(value, str) or len(value) > MAX_LABEL_VALUE_LENGTH:
            raise refused(f"label values are strings of at most {MAX_LABEL_VALUE_LENGTH} "
                          "characters")
    return dict(labels)


async def _set_details(rt: FleetContext, satellite_id: str, changes: dict[str, Any], *,
                       actor: Actor) -> None:
    """Write validated name/allow-list/labels in one admin change and audit it."""
    row = await get_satellite(satellite_id)
    changes = {key: value for key, value in changes.items() if getattr(row, key) != value}
    if not changes:
        return
    if "name" in changes and await Satellite.exclude(id=satellite_id).filter(
            name=changes["name"]).exists():
        raise name_taken(changes["name"])
    try:
        state = await rt.fleet.apply_admin_change(satellite_id, "details", **changes)
    except IntegrityError as error:  # the name was taken concurrently
        raise name_taken(changes["name"]) from error
    if state is None:
        raise NotFound("Satellite not found", code="satellite_not_found")
    details: dict[str, Any] = {"name": state.name, "changed": sorted(changes)}
    if "name" in changes:
        details["previous_name"] = row.name
    if "allowed_cidrs" in changes:
        details["allowed_cidrs"] = changes["allowed_cidrs"]
    await record_audit("satellite.updated", actor=actor, object_type="satellite",
                       object_id=satellite_id, team_id=state.team_id, details=details)


async def update_satellite(
    rt: FleetContext,
    satellite_id: str,
    *,
    name: str | None = None,
    status: SatelliteStatus | None = None,
    config_overrides: Any = None,
    allowed_cidrs: Any = None,
    labels: Any = None,
    actor: Actor,
) -> SatelliteState:
    """Edit a satellite: any of name, admin status, config overrides, IP allow-list,
    labels (None leaves a field as it is).

    Every value is validated before anything is written, so a refused edit
    changes nothing: names as at registration (10–32 of `a-z 0-9 _ -`, unique →
    409 `satellite_name_taken`), CIDRs parse, labels per `checked_labels`,
    overrides per `set_config_overrides`. Status follows `set_satellite_status`.
    Each change goes through `rt.fleet.apply_admin_change` and is audited.
    """
    details: dict[str, Any] = {}
    if name is not None:
        details["name"] = validate_satellite_name(name)
    if allowed_cidrs is not None:
        details["allowed_cidrs"] = checked_allowed_cidrs(allowed_cidrs)
    if labels is not None:
        details["labels"] = checked_labels(labels)
    if config_overrides is not None:
        checked_json_object(config_overrides, what="config_overrides",
                            field="config_overrides", max_bytes=MAX_OVERRIDES_BYTES)
    if status is SatelliteStatus.DELETED:
        raise ValidationError("Use delete_satellite to delete a satellite")
    await get_satellite(satellite_id)
    await _set_details(rt, satellite_id, details, actor=actor)
    if config_overrides is not None:
        await set_config_overrides(rt, satellite_id, config_overrides, actor=actor)
    if status is not None:
        await set_satellite_status(rt, satellite_id, status, actor=actor)
    row = await get_satellite(satellite_id)
    state = rt.fleet.get(satellite_id) or rt.fleet.apply_row(row)
    assert state is not None
    return state
