"""Registration tokens: HS256 JWTs behind a scope prefix (docs/protocol.md §3).

Wire format: `deploystack_satellite_global_<JWT>` or `deploystack_satellite_team_<JWT>`.
This module only signs and checks the token text; whether a token is known,
revoked or used is the database's business (`app/services/tokens.py`).

Decoding checks, in this order, so that the errors come out in the order of
the protocol table: prefix, signature and `alg` (HS256 only), required claims,
`aud`, `iss` (all → `invalid_registration_token`), and only then `exp`
(→ `token_expired`). A token that is both expired and wrongly signed is
therefore invalid, not expired.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from app.models.enums import TokenScope

AUDIENCE = "satellite-registration"
ALGORITHM = "HS256"
TOKEN_PREFIXES: dict[TokenScope, str] = {
    TokenScope.GLOBAL: "deploystack_satellite_global_",
    TokenScope.TEAM: "deploystack_satellite_team_",
}
# Tokens we issue are ~400 characters; anything far longer is not ours.
MAX_TOKEN_LENGTH = 4096
MAX_CLAIM_LENGTH = 255
# Tolerated clock difference between the issuing process and this one (for `iat` only).
_IAT_LEEWAY_SECONDS = 60

INVALID = "invalid_registration_token"
EXPIRED = "token_expired"


class TokenRejected(Exception):
    """The token text is not acceptable; `code` is the protocol's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class TokenClaims:
    jti: str
    # The raw `scope` claim: compared with the prefix scope only after the database
    # checks (docs/protocol.md §3 puts `token_invalid_scope` last).
    scope_claim: str
    team_id: str | None
    created_by: str | None
    satellite_name: str | None
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class DecodedToken:
    prefix_scope: TokenScope
    jwt_text: str
    claims: TokenClaims

    @property
    def scope_matches_prefix(self) -> bool:
        return self.claims.scope_claim == self.prefix_scope.value


def token_digest(token: str) -> str:
    """SHA-256 (hex) of the full wire token: what the database stores instead of the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def canonical_token(scope: TokenScope, jwt_text: str) -> str:
    return TOKEN_PREFIXES[scope] + jwt_text


def encode_token(
    key: bytes,
    *,
    issuer: str,
    jti: str,
    scope: TokenScope,
    team_id: str | None,
    created_by: str | None,
    satellite_name: str | None,
    issued_at: datetime,
    lifetime: timedelta,
) -> tuple[str, datetime]:
    """Sign a token; returns `(wire_token, expires_at)`."""
    iat = int(issued_at.timestamp())
    exp = iat + int(lifetime.total_seconds())
    payload: dict[str, Any] = {
        "iss": issuer,
        "aud": AUDIENCE,
        "iat": iat,
        "exp": exp,
        "jti": jti,
        "scope": scope.value,
        "team_id": team_id,
        "created_by": created_by,
    }
    if satellite_name is not None:
        payload["satellite_name"] = satellite_name
    encoded = jwt.encode(payload, key, algorithm=ALGORITHM, headers={"typ": "JWT"})
    return canonical_token(scope, encoded), datetime.fromtimestamp(exp, UTC)


def _split_prefix(token: str) -> tuple[TokenScope, str]:
    for scope, prefix in TOKEN_PREFIXES.items():
        if token.startswith(prefix):
            return scope, token[len(prefix) :]
    raise TokenRejected(INVALID, "The registration token has an unknown prefix")


def _optional_string(payload: dict[str, Any], name: str) -> str | None:
    value = payload.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_CLAIM_LENGTH:
        raise TokenRejected(INVALID, f"The registration token's {name} claim is malformed")
    return value


def _timestamp(payload: dict[str, Any], name: str) -> datetime:
    value = payload.get(name)
    # bool is an int subclass; a JSON `true` is not a time.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenRejected(INVALID, f"The registration token's {name} claim is malformed")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError) as error:
        raise TokenRejected(
            INVALID, f"The registration token's {name} claim is malformed"
        ) from error


def decode_token(key: bytes, token: str, *, issuer: str, now: datetime) -> DecodedToken:
    """Check a wire token's text and signature; raise `TokenRejected` in protocol order."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenRejected(INVALID, "The registration token is too long")
    prefix_scope, jwt_text = _split_prefix(token)
    try:
        payload = jwt.decode(
            jwt_text,
            key,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=issuer,
            # `exp` is checked below, after aud/iss, so the error order matches the table;
            # `iat` too, against the caller's clock.
            options={
                "verify_exp": False,
                "verify_iat": False,
                "require": ["exp", "iat", "jti", "aud", "iss", "scope"],
                "strict_aud": True,
            },
        )
    except jwt.PyJWTError as error:
        raise TokenRejected(INVALID, "The registration token is not valid") from error
    if not isinstance(payload, dict):
        raise TokenRejected(INVALID, "The registration token is not valid")
    jti = _optional_string(payload, "jti")
    scope_claim = payload.get("scope")
    if jti is None or not isinstance(scope_claim, str):
        raise TokenRejected(INVALID, "The registration token's claims are malformed")
    claims = TokenClaims(
        jti=jti,
        scope_claim=scope_claim,
        team_id=_optional_string(payload, "team_id"),
        created_by=_optional_string(payload, "created_by"),
        satellite_name=_optional_string(payload, "satellite_name"),
        issued_at=_timestamp(payload, "iat"),
        expires_at=_timestamp(payload, "exp"),
    )
    if claims.issued_at > now + timedelta(seconds=_IAT_LEEWAY_SECONDS):
        raise TokenRejected(INVALID, "The registration token was issued in the future")
    if claims.expires_at <= now:
        raise TokenRejected(EXPIRED, "The registration token has expired")
    return DecodedToken(prefix_scope, jwt_text, claims)
