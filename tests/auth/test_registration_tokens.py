"""The registration token's text: signing, prefixes, and the order of rejections."""

from __future__ import annotations

import json
import warnings
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from app.auth.registration_tokens import (
    AUDIENCE,
    TOKEN_PREFIXES,
    TokenRejected,
    decode_token,
    encode_token,
    token_digest,
)
from app.models.enums import TokenScope

KEY = b"k" * 32
ISSUER = "groundstation"
NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def issue(scope: TokenScope = TokenScope.GLOBAL, **overrides: Any) -> str:
    token, _ = encode_token(
        KEY,
        issuer=ISSUER,
        jti=overrides.get("jti", "a" * 32),
        scope=scope,
        team_id=overrides.get("team_id"),
        created_by=overrides.get("created_by"),
        satellite_name=overrides.get("satellite_name"),
        issued_at=overrides.get("issued_at", NOW),
        lifetime=overrides.get("lifetime", timedelta(hours=1)),
    )
    return token


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": int(NOW.timestamp()),
        "exp": int((NOW + timedelta(hours=1)).timestamp()),
        "jti": "b" * 32,
        "scope": "global",
        "team_id": None,
        "created_by": None,
    }
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not ...}


def signed(
    payload: Any,
    *,
    key: Any = KEY,
    algorithm: str = "HS256",
    prefix: str = TOKEN_PREFIXES[TokenScope.GLOBAL],
) -> str:
    """Sign any JSON payload as is (PyJWT's encoder would refuse some malformed claims)."""
    with warnings.catch_warnings():  # short keys for other algorithms: irrelevant here
        warnings.simplefilter("ignore")
        return prefix + jwt.api_jws.PyJWS().encode(
            json.dumps(payload).encode(), key, algorithm=algorithm
        )


def rejection(token: str, now: datetime = NOW) -> str:
    with pytest.raises(TokenRejected) as caught:
        decode_token(KEY, token, issuer=ISSUER, now=now)
    return caught.value.code


def test_issued_token_carries_every_claim_of_the_protocol() -> None:
    token = issue(
        TokenScope.TEAM, team_id="t" * 32, created_by="u" * 32, satellite_name="edge-satellite-1"
    )
    assert token.startswith("deploystack_satellite_team_")
    payload = jwt.decode(
        token.removeprefix("deploystack_satellite_team_"),
        KEY,
        algorithms=["HS256"],
        audience=AUDIENCE,
        issuer=ISSUER,
        options={"verify_exp": False, "verify_iat": False},
    )
    assert payload["scope"] == "team"
    assert payload["team_id"] == "t" * 32
    assert payload["created_by"] == "u" * 32
    assert payload["satellite_name"] == "edge-satellite-1"
    assert payload["exp"] - payload["iat"] == 3600
    assert set(payload) >= {"iss", "aud", "iat", "exp", "jti", "scope", "team_id", "created_by"}
    assert jwt.get_unverified_header(token.split("_", 3)[-1])["alg"] == "HS256"


def test_decoded_token_reports_claims_and_prefix_scope() -> None:
    decoded = decode_token(
        KEY,
        issue(satellite_name="edge-satellite-1"),
        issuer=ISSUER,
        now=NOW + timedelta(minutes=59),
    )
    assert decoded.prefix_scope is TokenScope.GLOBAL
    assert decoded.scope_matches_prefix
    assert decoded.claims.jti == "a" * 32
    assert decoded.claims.satellite_name == "edge-satellite-1"
    assert decoded.claims.expires_at == NOW + timedelta(hours=1)


def test_unbound_global_token_has_no_satellite_name_claim() -> None:
    token = issue()
    payload = jwt.decode(
        token.removeprefix(TOKEN_PREFIXES[TokenScope.GLOBAL]), options={"verify_signature": False}
    )
    assert "satellite_name" not in payload


@pytest.mark.parametrize(
    "token",
    [
        "deploystack_satellite_other_abc.def.ghi",
        "abc.def.ghi",
        "",
        TOKEN_PREFIXES[TokenScope.GLOBAL],
        TOKEN_PREFIXES[TokenScope.GLOBAL] + "not-a-jwt",
    ],
)
def test_bad_prefix_or_garbage_is_invalid(token: str) -> None:
    assert rejection(token) == "invalid_registration_token"


def test_wrong_signing_key_is_invalid() -> None:
    assert rejection(signed(claims(), key=b"x" * 32)) == "invalid_registration_token"


def test_alg_none_is_invalid() -> None:
    unsigned = jwt.encode(claims(), None, algorithm="none")  # type: ignore[arg-type]
    assert rejection(TOKEN_PREFIXES[TokenScope.GLOBAL] + unsigned) == "invalid_registration_token"


def test_hs384_with_the_right_key_is_invalid() -> None:
    assert rejection(signed(claims(), algorithm="HS384")) == "invalid_registration_token"


def test_hs512_with_the_right_key_is_invalid() -> None:
    assert rejection(signed(claims(), algorithm="HS512")) == "invalid_registration_token"


def test_rs256_token_is_invalid() -> None:
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert rejection(signed(claims(), key=private_key, algorithm="RS256")) == (
        "invalid_registration_token"
    )


def test_wrong_audience_is_invalid() -> None:
    assert rejection(signed(claims(aud="something-else"))) == "invalid_registration_token"


def test_audience_list_is_invalid() -> None:
    assert rejection(signed(claims(aud=[AUDIENCE, "other"]))) == "invalid_registration_token"


def test_wrong_issuer_is_invalid() -> None:
    assert rejection(signed(claims(iss="someone-else"))) == "invalid_registration_token"


def test_expired_token_is_expired() -> None:
    token = issue()
    assert rejection(token, now=NOW + timedelta(hours=1)) == "token_expired"


def test_expired_and_wrong_audience_is_invalid_not_expired() -> None:
    token = signed(
        claims(
            aud="wrong",
            exp=int((NOW - timedelta(hours=1)).timestamp()),
            iat=int((NOW - timedelta(hours=2)).timestamp()),
        )
    )
    assert rejection(token) == "invalid_registration_token"


def test_expired_and_badly_signed_is_invalid_not_expired() -> None:
    token = signed(
        claims(
            exp=int((NOW - timedelta(hours=1)).timestamp()),
            iat=int((NOW - timedelta(hours=2)).timestamp()),
        ),
        key=b"y" * 32,
    )
    assert rejection(token) == "invalid_registration_token"


@pytest.mark.parametrize("missing", ["exp", "iat", "jti", "aud", "iss", "scope"])
def test_missing_required_claim_is_invalid(missing: str) -> None:
    assert rejection(signed(claims(**{missing: ...}))) == "invalid_registration_token"


@pytest.mark.parametrize(
    "override",
    [
        {"jti": 12},
        {"jti": ""},
        {"team_id": 5},
        {"satellite_name": ["x"]},
        {"exp": "soon"},
        {"exp": True},
        {"scope": 1},
    ],
)
def test_malformed_claim_is_invalid(override: dict[str, Any]) -> None:
    assert rejection(signed(claims(**override))) == "invalid_registration_token"


def test_token_issued_in_the_future_is_invalid() -> None:
    token = issue(issued_at=NOW + timedelta(hours=2))
    assert rejection(token) == "invalid_registration_token"


def test_overlong_token_is_invalid() -> None:
    assert rejection(issue() + "a" * 5000) == "invalid_registration_token"


def test_swapped_prefix_decodes_but_does_not_match_its_scope() -> None:
    token = issue(TokenScope.GLOBAL)
    swapped = TOKEN_PREFIXES[TokenScope.TEAM] + token.removeprefix(
        TOKEN_PREFIXES[TokenScope.GLOBAL]
    )
    decoded = decode_token(KEY, swapped, issuer=ISSUER, now=NOW)
    assert decoded.prefix_scope is TokenScope.TEAM
    assert not decoded.scope_matches_prefix


def test_digest_is_sha256_hex_and_never_the_token() -> None:
    token = issue()
    digest = token_digest(token)
    assert len(digest) == 64
    assert token not in digest
    assert digest == token_digest(token)
    assert digest != token_digest(token + "x")


@settings(max_examples=200, deadline=None)
@given(
    prefix=st.sampled_from([*TOKEN_PREFIXES.values(), ""]),
    tail=st.text(max_size=300),
)
def test_arbitrary_text_is_rejected_with_a_protocol_code(prefix: str, tail: str) -> None:
    with pytest.raises(TokenRejected) as caught:
        decode_token(KEY, prefix + tail, issuer=ISSUER, now=NOW)
    assert caught.value.code == "invalid_registration_token"


@settings(max_examples=150, deadline=None)
@given(
    payload=st.one_of(
        st.lists(st.integers(), max_size=2),
        st.dictionaries(
            st.sampled_from(
                [
                    "iss",
                    "aud",
                    "iat",
                    "exp",
                    "jti",
                    "scope",
                    "team_id",
                    "created_by",
                    "satellite_name",
                    "other",
                ]
            ),
            st.one_of(
                st.none(),
                st.booleans(),
                st.integers(),
                st.floats(allow_nan=False),
                st.text(max_size=20),
                st.lists(st.integers(), max_size=3),
            ),
        ),
    )
)
def test_any_signed_payload_either_decodes_or_is_rejected_cleanly(
    payload: Any,
) -> None:
    token = signed(payload)
    codes = set()
    try:
        decode_token(KEY, token, issuer=ISSUER, now=NOW)
    except TokenRejected as rejected:
        codes.add(rejected.code)
    assert codes <= {"invalid_registration_token", "token_expired"}
