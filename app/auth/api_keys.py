"""Satellite API keys (docs/protocol.md §5).

Format: `deploystack_satellite_api_<global|team>_` + 32 characters of
`A-Za-z0-9_-`: the first 8 are a public key id (indexed column), the last 24
are secret (144 random bits). Stored only as an Argon2id hash with cheap
parameters, safe because the secret is random (there is no dictionary to try).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from app.models.enums import SatelliteType

KEY_PREFIX = "deploystack_satellite_api_"
KEY_ID_LENGTH = 8
SECRET_LENGTH = 24
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
_KEY_RE = re.compile(
    rf"^{KEY_PREFIX}(global|team)_([A-Za-z0-9_-]{{{KEY_ID_LENGTH}}})([A-Za-z0-9_-]{{{SECRET_LENGTH}}})$"
)

# t=1, m=8 MiB, p=1: ~7 ms per verify; the secret's 144 random bits make cost irrelevant.
_HASHER = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1, type=Type.ID)


@dataclass(frozen=True, slots=True)
class ParsedKey:
    satellite_type: SatelliteType
    key_id: str


def _random_chars(count: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(count))


def generate_api_key(satellite_type: SatelliteType) -> tuple[str, str]:
    """Return `(api_key, key_id)` for a new key."""
    key_id = _random_chars(KEY_ID_LENGTH)
    return f"{KEY_PREFIX}{satellite_type.value}_{key_id}{_random_chars(SECRET_LENGTH)}", key_id


def parse_api_key(presented: str) -> ParsedKey | None:
    match = _KEY_RE.match(presented)
    if match is None:
        return None
    return ParsedKey(SatelliteType(match.group(1)), match.group(2))


def hash_api_key(api_key: str) -> str:
    """Blocking (~7 ms): call through a thread."""
    return _HASHER.hash(api_key)


def verify_api_key(stored_hash: str, presented: str) -> bool:
    """Blocking (~7 ms): call through a thread."""
    try:
        return _HASHER.verify(stored_hash, presented)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
