"""Satellite registration and re-registration with a registration token (docs/protocol.md §3–4).

Order of checks: the address's failure limit (429), the token (the 401s of the
protocol table, in order), then the body (413/400), then the name rules.
Type and team come from the token, never from the body.

- A new name: the token is consumed and the satellite created in one
  transaction that starts with the consuming UPDATE, so a name taken
  concurrently rolls the consumption back (the token stays usable).
- An existing name: only a token of the same scope (and team) bound to that
  name re-registers it (same id, new key, old key refused at once, `active`
  back to `inactive`, `maintenance` kept). Otherwise 409
  `satellite_name_taken`; a disabled satellite gets 403 `satellite_disabled`.
  Neither consumes the token.

Every failure counts toward the address's authentication-failure limit
(shared with API keys) and is written to the audit log as a security event
(address, reason, token id; never the token).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from app.bus import Channels
from app.errors import AppError, Conflict, Forbidden, RateLimited, Unauthenticated
from app.models import Satellite
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
    await note_auth_failure(rt.auth_failures, address, error.code, {"jti": jti})
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
            raise name_taken(request.name)
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
    await rt.bus.publish(
        Channels.SATELLITE_CHANGED, {"satellite_id": row.id, "reason": "registered"}
    )
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


def _may_reregister(token: VerifiedToken, existing: Satellite) -> bool:
    """Same scope, same team, and a token bound to this very name (docs/protocol.md §4)."""
    satellite_type, team_id = _token_satellite(token)
    return (
        token.satellite_name == existing.name
        and existing.satellite_type is satellite_type
        and existing.team_id == team_id  # type: ignore[attr-defined]
    )


async def _reregister(
    rt: FleetContext, token: VerifiedToken, request: RegistrationRequest, address: str
) -> RegistrationResult:
    new_key: tuple[str, str, str] | None = None
    for _ in range(_REREGISTER_ATTEMPTS):
        existing = await Satellite.get_or_none(name=request.name)
        if existing is None:
            return await _create(rt, token, request, address)
        if not _may_reregister(token, existing):
            raise name_taken(request.name)
        if existing.status is SatelliteStatus.DISABLED:
            raise Forbidden("This satellite is disabled", code="satellite_disabled")
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
            "capabilities": list(request.capabilities),
        }
        if request.system_info is not None:
            changes["system_info"] = request.system_info
        if request.satellite_url:
            changes["satellite_url"] = request.satellite_url
        state = await rt.fleet.apply_admin_change(
            existing.id, "re-registered", only_if_status=previous, **changes
        )
        if state is None:  # its status changed under us: give the token back, decide again
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
                "jti": token.jti,
                "previous_status": previous.value,
                "status": status.value,
                "key_id": key_id,
                "token_created_by": token.created_by,
            },
        )
        log.info("satellite re-registered", extra={"op": "register", "satellite_id": state.id})
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
