"""Registration tokens: issue, list, revoke, verify, consume (docs/protocol.md §3).

The database row keeps the `jti`, scope, team, creator, expiry, use and
revocation, and the SHA-256 of the full token, never the token. Verification
looks the row up by `jti` after the signature check (no scan, no per-row
hash), then compares the stored digest in constant time. Consumption is one
conditional UPDATE whose row count decides who won.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from tortoise.backends.base.client import BaseDBAsyncClient

from app.auth.bearer import bearer_credential
from app.auth.registration_tokens import (
    EXPIRED,
    INVALID,
    TokenRejected,
    canonical_token,
    decode_token,
    encode_token,
    token_digest,
)
from app.errors import Conflict, NotFound, Unauthenticated, ValidationError
from app.models import RegistrationToken, Team
from app.models.enums import TokenScope
from app.models.ids import new_id
from app.services.common.actors import Actor
from app.services.common.audit import record_audit
from app.services.common.clock import iso
from app.services.satellites.admin import validate_satellite_name

if TYPE_CHECKING:
    from app.services.fleet.context import FleetContext

TOKEN_REQUIRED = "registration_token_required"
ALREADY_USED = "token_already_used"
INVALID_SCOPE = "token_invalid_scope"

DEFAULT_HOURS = {TokenScope.GLOBAL: 1, TokenScope.TEAM: 24}
MAX_HOURS = {TokenScope.GLOBAL: 24, TokenScope.TEAM: 72}


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str  # shown once; never stored
    row: RegistrationToken


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """A token that passed every check of the protocol table (not yet consumed)."""

    jti: str
    scope: TokenScope
    team_id: str | None
    created_by: str | None
    satellite_name: str | None
    expires_at: datetime


def _unauthenticated(code: str, message: str) -> Unauthenticated:
    return Unauthenticated(message, code=code)


# Tokens one call may issue (`token create --count`, `createRegistrationTokens`).
MAX_TOKENS_PER_CALL = 10_000


@dataclass(frozen=True, slots=True)
class _Lifetime:
    scope: TokenScope
    team_id: str | None
    hours: int


async def _checked_lifetime(scope: TokenScope, team_id: str | None, hours: int | None
                            ) -> _Lifetime:
    """The scope, team and lifetime rules shared by single and bulk issuance."""
    try:
        scope = TokenScope(str(scope).lower())
    except ValueError as error:
        raise ValidationError("Token scope is 'global' or 'team'") from error
    if hours is None:
        hours = DEFAULT_HOURS[scope]
    if isinstance(hours, bool) or not 1 <= hours <= MAX_HOURS[scope]:
        raise ValidationError(
            f"{scope.value} tokens live 1 to {MAX_HOURS[scope]} hours",
            details=[{"field": "hours", "message": f"must be 1-{MAX_HOURS[scope]}"}],
        )
    if scope is TokenScope.TEAM:
        if not team_id:
            raise ValidationError("A team token needs a team")
        if not await Team.exists(id=team_id):
            raise NotFound("Team not found", code="team_not_found")
    elif team_id is not None:
        raise ValidationError("A global token cannot belong to a team")
    return _Lifetime(scope, team_id, hours)


def _signed(rt: FleetContext, lifetime: _Lifetime, satellite_name: str | None,
            actor: Actor) -> IssuedToken:
    """One signed token and its (unsaved) row."""
    jti = new_id()
    token, expires_at = encode_token(
        rt.keys.registration_tokens,
        issuer=rt.settings.issuer,
        jti=jti,
        scope=lifetime.scope,
        team_id=lifetime.team_id,
        created_by=actor.user_id,
        satellite_name=satellite_name,
        issued_at=rt.clock.now(),
        lifetime=timedelta(hours=lifetime.hours),
    )
    row = RegistrationToken(
        jti=jti,
        scope=lifetime.scope,
        team_id=lifetime.team_id,
        satellite_name=satellite_name,
        token_hash=token_digest(token),
        created_by_id=actor.user_id,
        expires_at=expires_at,
    )
    return IssuedToken(token, row)


async def issue_registration_token(
    rt: FleetContext,
    *,
    scope: TokenScope,
    team_id: str | None,
    hours: int | None,
    satellite_name: str | None,
    actor: Actor,
) -> IssuedToken:
    """Issue a single-use registration token.

    Lifetime: default 1 h (global) / 24 h (team); allowed 1–24 h (global) and
    1–72 h (team). A team token names an existing team; a global token names
    none. `satellite_name` binds the token to one name (needed to re-register
    a live satellite). Who may issue is the caller's check (docs/graphql.md §2).
    """
    lifetime = await _checked_lifetime(scope, team_id, hours)
    if satellite_name is not None:
        validate_satellite_name(satellite_name)
    issued = _signed(rt, lifetime, satellite_name, actor)
    await issued.row.save(force_create=True)
    await record_audit(
        "registration_token.issued",
        actor=actor,
        object_type="registration_token",
        object_id=issued.row.jti,
        team_id=lifetime.team_id,
        details={
            "scope": lifetime.scope.value,
            "satellite_name": satellite_name,
            "expires_at": iso(issued.row.expires_at),
            "hours": lifetime.hours,
        },
    )
    return issued


async def issue_registration_tokens(
    rt: FleetContext,
    *,
    count: int,
    scope: TokenScope,
    team_id: str | None,
    hours: int | None,
    actor: Actor,
) -> list[IssuedToken]:
    """Issue `count` (1 to MAX_TOKENS_PER_CALL) single-use tokens at once, for
    provisioning a fleet: the same rules as one token (none is bound to a satellite
    name), written in one statement and audited as one action."""
    if isinstance(count, bool) or not 1 <= count <= MAX_TOKENS_PER_CALL:
        raise ValidationError(
            f"count is 1 to {MAX_TOKENS_PER_CALL:,}",
            details=[{"field": "count", "message": f"must be 1-{MAX_TOKENS_PER_CALL}"}],
        )
    lifetime = await _checked_lifetime(scope, team_id, hours)
    issued = [_signed(rt, lifetime, None, actor) for _ in range(count)]
    await RegistrationToken.bulk_create([token.row for token in issued], batch_size=500)
    await record_audit(
        "registration_tokens.issued",
        actor=actor,
        object_type="registration_token",
        team_id=lifetime.team_id,
        details={
            "count": count,
            "scope": lifetime.scope.value,
            "expires_at": iso(issued[0].row.expires_at),
            "hours": lifetime.hours,
        },
    )
    return issued


async def list_registration_tokens(
    *, team_id: str | None = None, scope: TokenScope | None = None
) -> list[RegistrationToken]:
    """Token rows (never token values), newest first, optionally narrowed by team and scope."""
    query = RegistrationToken.all()
    if team_id is not None:
        query = query.filter(team_id=team_id)
    if scope is not None:
        query = query.filter(scope=scope)
    return await query.order_by("-created_at", "-jti")


async def revoke_registration_token(
    rt: FleetContext, jti: str, *, actor: Actor
) -> RegistrationToken:
    """Revoke an unused token. Unknown → NotFound; consumed → Conflict `token_already_used`;
    already revoked → unchanged (idempotent)."""
    changed = await RegistrationToken.filter(
        jti=jti, used_at__isnull=True, revoked_at__isnull=True
    ).update(revoked_at=rt.clock.now())
    row = await RegistrationToken.get_or_none(jti=jti)
    if row is None:
        raise NotFound("Registration token not found", code="token_not_found")
    if changed:
        await record_audit(
            "registration_token.revoked",
            actor=actor,
            object_type="registration_token",
            object_id=jti,
            team_id=row.team_id,  # type: ignore[attr-defined]
            details={"scope": row.scope.value, "satellite_name": row.satellite_name},
        )
        return row
    if row.used_at is not None:
        raise Conflict("This token was already used", code=ALREADY_USED)
    return row


def _presented_token(authorization: str | None) -> str:
    token = bearer_credential(authorization)
    if token is None:
        raise _unauthenticated(
            TOKEN_REQUIRED, "A registration token is required (Authorization: Bearer <token>)"
        )
    return token


async def verify_registration_token(rt: FleetContext, authorization: str | None) -> VerifiedToken:
    """Check a registration token against the protocol table, in its order.

    1. no `Bearer` header → `registration_token_required`
    2. bad prefix, signature, `alg`, `aud`, `iss` → `invalid_registration_token`
    3. `exp` passed → `token_expired`
    4. unknown `jti`, revoked, or not the token issued under that `jti`
       → `invalid_registration_token`
    5. consumed → `token_already_used`
    6. `scope` claim differs from the prefix → `token_invalid_scope`
    All are 401. Nothing is consumed here.
    """
    token = _presented_token(authorization)
    try:
        decoded = decode_token(
            rt.keys.registration_tokens, token, issuer=rt.settings.issuer, now=rt.clock.now()
        )
    except TokenRejected as rejected:
        raise _unauthenticated(rejected.code, rejected.message) from None
    claims = decoded.claims
    row = await RegistrationToken.get_or_none(jti=claims.jti)
    if row is None or row.revoked_at is not None:
        raise _unauthenticated(INVALID, "The registration token is unknown or revoked")
    # The stored digest is of the token as issued (its row's prefix + the JWT), so a
    # token whose prefix was swapped still reaches the scope check below.
    expected = token_digest(canonical_token(row.scope, decoded.jwt_text))
    if not hmac.compare_digest(expected.encode(), row.token_hash.encode()):
        raise _unauthenticated(INVALID, "The registration token is unknown or revoked")
    if row.used_at is not None:
        raise _unauthenticated(ALREADY_USED, "The registration token was already used")
    if not decoded.scope_matches_prefix:
        raise _unauthenticated(
            INVALID_SCOPE, "The registration token's scope does not match its prefix"
        )
    return VerifiedToken(
        jti=claims.jti,
        scope=decoded.prefix_scope,
        team_id=claims.team_id,
        created_by=claims.created_by,
        satellite_name=claims.satellite_name,
        expires_at=claims.expires_at,
    )


async def consume_registration_token(
    token: VerifiedToken,
    *,
    satellite_id: str,
    now: datetime,
    using_db: BaseDBAsyncClient | None = None,
) -> datetime:
    """Mark a verified token used by `satellite_id`: one conditional UPDATE.

    Exactly one of several concurrent consumers wins; the others get the code
    that describes the row as it now is (`token_already_used`, `token_expired`,
    or `invalid_registration_token` when revoked). Returns the `used_at` written.
    """
    changed = (
        await RegistrationToken.filter(
            jti=token.jti, used_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now
        )
        .using_db(using_db)
        .update(used_at=now, used_by_satellite_id=satellite_id)
    )
    if changed == 1:
        return now
    row = await RegistrationToken.get_or_none(jti=token.jti, using_db=using_db)
    if row is None or row.revoked_at is not None:
        raise _unauthenticated(INVALID, "The registration token is unknown or revoked")
    if row.used_at is not None:
        raise _unauthenticated(ALREADY_USED, "The registration token was already used")
    raise _unauthenticated(EXPIRED, "The registration token has expired")


async def release_registration_token(jti: str, *, satellite_id: str) -> bool:
    """Undo a consumption when the registration it paid for could not be applied.

    Conditional on the use being undone (a used token cannot be used again, so
    `jti` + `satellite_id` name exactly that use).
    """
    changed = await RegistrationToken.filter(
        jti=jti, used_by_satellite_id=satellite_id, used_at__isnull=False
    ).update(used_at=None, used_by_satellite_id=None)
    return changed == 1
