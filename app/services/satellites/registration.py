"""Satellite registration and re-registration with a registration token (docs/protocol.md §3–4).

Order of checks: the address's failure limit (429), the token (the 401s of the
protocol table, in order), then the body (413/400), then the name rules.
Type and team come from the token, never from the body.

- A new name: the token is consumed and the satellite created in one
  transaction that starts with the consuming UPDATE, so a name taken
  concurrently rolls the consumption back (the token stays usable).
- An existing name (re-registration) needs a token of the same scope (and
  team) that is either bound to that name (rule `name_bound`), or unbound while
  the satellite is not live: no heartbeat within `offline_threshold`, or none
  ever (`offline`), or its current key came from an operator's rotation and has
  not authenticated since (`rotated_key_unused`). It keeps the id, history and
  processes, replaces the key (the old one is refused at once), puts `active`
  back to `inactive` (`maintenance` is kept) and writes an audit entry naming
  the token and the rule. Otherwise 409 `satellite_name_taken`, with a message
  saying why (token bound to another name, another scope, or a live satellite,
  with how to recover); a disabled satellite gets 403 `satellite_disabled`.
  Neither consumes the token.

Every failure counts toward the address's authentication-failure limit
(shared with API keys) and is written to the audit log as a security event
(address, reason, token id; never the token).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from app.errors import AppError, Conflict, Forbidden, RateLimited, Unauthenticated
from app.models import Satellite, Team
from app.models.enums import SatelliteStatus, SatelliteType, TokenScope
from app.models.ids import new_id
from app.services.common.actors import anonymous_actor, satellite_actor
from app.services.common.audit import record_audit
from app.services.fleet.authentication import note_auth_failure
from app.services.satellites.admin import insert_satellite, name_taken, new_api_key, publish_status
from app.services.satellites.tokens import (
    VerifiedToken,
    consume_registration_token,
    release_registration_token,
    verify_registration_token,
)
from app.wire.registration import RegistrationRequest

if TYPE_CHECKING:
    from app.services.fleet.context import FleetContext

log = logging.getLogger(__name__)

# The REST handler passes a reader so the body is read and validated only after
# the token has been verified (docs/protocol.md: 401 before 413/400).
BodyReader = Callable[[], Awaitable[RegistrationRequest]]

_REREGISTER_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class RegistrationResult:
    satellite_id: str
    name: str
    satellite_type: SatelliteType
    team_id: str | None
    status: SatelliteStatus
    api_key: str  # shown once, in the response
    reregistered: bool

    @property
    def message(self) -> str:
        verb = "re-registered" if self.reregistered else "registered"
        if self.status is SatelliteStatus.INACTIVE:
            return f"Satellite {verb}. Status is 'inactive' until its first heartbeat."
        return f"Satellite {verb}. Status is '{self.status.value}'."


async def register_satellite(
    rt: FleetContext,
    *,
    authorization: str | None,
    body: RegistrationRequest | BodyReader,
    address: str,
) -> RegistrationResult:
    """Register a new satellite, or re-register an existing one, with a registration token.

    See the module docstring for the rules and their order.
    """
    await rt.auth_failures.check(address)
    jti: str | None = None
    name: str | None = None
    try:
        token = await verify_registration_token(rt, authorization)
        jti = token.jti
        request = body if isinstance(body, RegistrationRequest) else await body()
        name = request.name
        return await _register(rt, token, request, address)
    except RateLimited:
        raise
    except AppError as error:
        await _note_failure(rt, address, error, jti, name)
        raise


async def _note_failure(
    rt: FleetContext, address: str, error: AppError, jti: str | None, name: str | None
) -> None:
    await note_auth_failure(rt, address, error.code, {"jti": jti})
    await record_audit(
        "security.registration_failed",
        actor=anonymous_actor(address),
        object_type="registration_token" if jti else None,
        object_id=jti,
        details={
            "address": address,
            "reason": error.code,
            "status": error.status,
            "jti": jti,
            "name": name,
        },
    )


def _token_satellite(token: VerifiedToken) -> tuple[SatelliteType, str | None]:
    if token.scope is TokenScope.TEAM:
        return SatelliteType.TEAM, token.team_id
    return SatelliteType.GLOBAL, None


async def _register(
    rt: FleetContext, token: VerifiedToken, request: RegistrationRequest, address: str
) -> RegistrationResult:
    existing = await Satellite.get_or_none(name=request.name)
    if token.satellite_name is not None and token.satellite_name != request.name:
        if existing is not None:
            raise _bound_elsewhere(request.name, token.satellite_name)
        raise Unauthenticated(
            f"This registration token is bound to the satellite name '{token.satellite_name}'",
            code="invalid_registration_token",
        )
    if existing is None:
        return await _create(rt, token, request, address)
    return await _reregister(rt, token, request, address)


async def _create(
    rt: FleetContext, token: VerifiedToken, request: RegistrationRequest, address: str
) -> RegistrationResult:
    satellite_type, team_id = _token_satellite(token)
    api_key, key_id, key_hash = await new_api_key(satellite_type)  # before the transaction
    satellite_id = new_id()
    try:
        async with in_transaction() as connection:
            # The first statement writes, so SQLite takes the write lock at once.
            await consume_registration_token(token, satellite_id=satellite_id, now=rt.clock.now(),
                                            using_db=connection)
            row = await insert_satellite(
                satellite_id=satellite_id,
                name=request.name,
                satellite_type=satellite_type,
                team_id=team_id,
                key_id=key_id,
                key_hash=key_hash,
                capabilities=list(request.capabilities),
                satellite_url=request.satellite_url,
                system_info=request.system_info,
                using_db=connection,
            )
    except IntegrityError as error:
        # Taken between our read and our insert; the rollback kept the token unused.
        if await Satellite.exists(name=request.name):
            raise name_taken(request.name) from error
        raise
    rt.fleet.apply_row(row)
    await rt.fleet.announce_change(row.id, "registered")
    await record_audit(
        "satellite.registered",
        actor=satellite_actor(row.id, address),
        object_type="satellite",
        object_id=row.id,
        team_id=team_id,
        details={
            "name": row.name,
            "satellite_type": satellite_type.value,
            "jti": token.jti,
            "token_created_by": token.created_by,
            "key_id": key_id,
        },
    )
    log.info("satellite registered", extra={"op": "register", "satellite_id": row.id})
    return RegistrationResult(
        satellite_id=row.id,
        name=row.name,
        satellite_type=satellite_type,
        team_id=team_id,
        status=row.status,
        api_key=api_key,
        reregistered=False,
    )


class ReregistrationRule(StrEnum):
    """Which rule of docs/protocol.md §4 allowed a re-registration (recorded in the audit entry)."""

    NAME_BOUND = "name_bound"  # the token is bound to the satellite's name
    OFFLINE = "offline"  # unbound; no heartbeat within the offline threshold, or none ever
    ROTATED_KEY_UNUSED = "rotated_key_unused"  # unbound; key rotated by an operator, unused


def _taken(name: str, why: str) -> Conflict:
    return Conflict(f"A satellite named '{name}' already exists: {why}",
                    code="satellite_name_taken")


def _bound_elsewhere(name: str, bound_to: str) -> Conflict:
    return _taken(name, f"this registration token is bound to the name '{bound_to}', so it "
                        f"cannot re-register '{name}'")


def _scope_mismatch(token: VerifiedToken, existing: Satellite) -> str | None:
    """Why the token's scope cannot re-register `existing`, or None when it is the same."""
    satellite_type, team_id = _token_satellite(token)
    if existing.satellite_type is satellite_type and existing.team_id == team_id:  # type: ignore[attr-defined]
        return None
    if existing.satellite_type is SatelliteType.GLOBAL:
        return ("it is a global satellite, and only a global registration token can "
                "re-register it")
    if token.scope is TokenScope.GLOBAL:
        return ("it is a team satellite, and only a registration token of its own team can "
                "re-register it")
    return ("it belongs to another team, and only a registration token of its own team can "
            "re-register it")


def _last_heartbeat_at(rt: FleetContext, existing: Satellite) -> datetime | None:
    """The satellite's latest heartbeat as this instance knows it: memory (heartbeats it
    answered, not yet flushed) or the row (flushed by any instance), whichever is later."""
    state = rt.fleet.get(existing.id)
    seen = [at for at in (existing.last_heartbeat_at,
                          state.last_heartbeat_at if state is not None else None)
            if at is not None]
    return max(seen, default=None)


def _offline(rt: FleetContext, last: datetime | None) -> bool:
    """No heartbeat within `offline_threshold`, or none ever (as the offline job decides)."""
    cutoff = rt.clock.now() - timedelta(seconds=rt.settings.offline_threshold)
    return last is None or last < cutoff


async def _live_conflict(rt: FleetContext, existing: Satellite, last: datetime) -> Conflict:
    """The 409 for a live satellite and an unbound token, saying how to recover."""
    threshold = rt.settings.offline_threshold
    since = max(0, int((rt.clock.now() - last).total_seconds()))
    wait = max(1, math.ceil(
        (last + timedelta(seconds=threshold) - rt.clock.now()).total_seconds()))
    scope = "--scope global"
    team_id: str | None = existing.team_id  # type: ignore[attr-defined]
    if team_id is not None:
        team = await Team.get_or_none(id=team_id)
        scope = f"--scope team --team {team.slug if team is not None else team_id}"
    return _taken(
        existing.name,
        f"it is live (last heartbeat {since} s ago), and an unbound registration token "
        "re-registers only a satellite that is offline or whose rotated key was never used. "
        "To re-register it now, use a token bound to the name "
        f"(groundstation token create {scope} --name {existing.name}); or wait until it is "
        f"offline (no heartbeat for {threshold} s, so in about {wait} s) and try again.",
    )


async def _reregistration_rule(
    rt: FleetContext, token: VerifiedToken, existing: Satellite
) -> ReregistrationRule:
    """The rule of docs/protocol.md §4 that lets `token` re-register `existing`.

    Checked in this order: a token bound to another name (409), another scope
    (409), a disabled satellite (403), a token bound to this name, an offline
    satellite, a rotated key not used since; a live satellite is 409.
    """
    if token.satellite_name is not None and token.satellite_name != existing.name:
        raise _bound_elsewhere(existing.name, token.satellite_name)
    mismatch = _scope_mismatch(token, existing)
    if mismatch is not None:
        raise _taken(existing.name, mismatch)
    if existing.status is SatelliteStatus.DISABLED:
        raise Forbidden("This satellite is disabled", code="satellite_disabled")
    if token.satellite_name == existing.name:
        return ReregistrationRule.NAME_BOUND
    last = _last_heartbeat_at(rt, existing)
    if _offline(rt, last):
        return ReregistrationRule.OFFLINE
    if existing.rotated_key_unused:
        return ReregistrationRule.ROTATED_KEY_UNUSED
    assert last is not None  # not offline
    raise await _live_conflict(rt, existing, last)


async def _reregister(
    rt: FleetContext, token: VerifiedToken, request: RegistrationRequest, address: str
) -> RegistrationResult:
    new_key: tuple[str, str, str] | None = None
    for _ in range(_REREGISTER_ATTEMPTS):
        existing = await Satellite.get_or_none(name=request.name)
        if existing is None:
            return await _create(rt, token, request, address)
        rule = await _reregistration_rule(rt, token, existing)
        if new_key is None:  # hashed once, outside any transaction
            new_key = await new_api_key(existing.satellite_type)
        api_key, key_id, key_hash = new_key
        previous = existing.status
        status = (
            SatelliteStatus.MAINTENANCE
            if previous is SatelliteStatus.MAINTENANCE
            else SatelliteStatus.INACTIVE
        )
        await consume_registration_token(token, satellite_id=existing.id, now=rt.clock.now())
        changes: dict[str, Any] = {
            "api_key_id": key_id,
            "api_key_hash": key_hash,
            "key_generation": F("key_generation") + 1,
            "status": status,
            "rotated_key_unused": False,
            "capabilities": list(request.capabilities),
        }
        if request.system_info is not None:
            changes["system_info"] = request.system_info
        if request.satellite_url:
            changes["satellite_url"] = request.satellite_url
        # Decided on this row: a rotation (or a first use of a rotated key) in between
        # means deciding again.
        guard: dict[str, Any] = {"key_generation": existing.key_generation}
        if rule is ReregistrationRule.ROTATED_KEY_UNUSED:
            guard["rotated_key_unused"] = True
        state = await rt.fleet.apply_admin_change(
            existing.id, "re-registered", only_if_status=previous, only_if=guard, **changes
        )
        if state is None:  # it changed under us: give the token back, decide again
            await release_registration_token(token.jti, satellite_id=existing.id)
            continue
        rt.key_cache.evict_satellite(existing.id)
        if status is not previous:
            await publish_status(
                rt,
                satellite_id=existing.id,
                team_id=state.team_id,
                status=status,
                previous_status=previous,
                online=state.online,
            )
        await record_audit(
            "satellite.reregistered",
            actor=satellite_actor(existing.id, address),
            object_type="satellite",
            object_id=existing.id,
            team_id=state.team_id,
            details={
                "name": existing.name,
                "rule": rule.value,
                "jti": token.jti,
                "token_scope": token.scope.value,
                "previous_status": previous.value,
                "status": status.value,
                "key_id": key_id,
                "token_created_by": token.created_by,
            },
        )
        log.info("satellite re-registered",
                 extra={"op": "register", "satellite_id": state.id, "rule": rule.value})
        return RegistrationResult(
            satellite_id=state.id,
            name=state.name,
            satellite_type=state.satellite_type,
            team_id=state.team_id,
            status=status,
            api_key=api_key,
            reregistered=True,
        )
    raise Conflict(
        "The satellite changed while re-registering; try again", code="satellite_name_taken"
    )
