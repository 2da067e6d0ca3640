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

# t=1, m=256 KiB, p=1: ~0.1 ms per verify, so a restart re-verifies 10,000 keys in
# about a second. Hash cost protects guessable secrets; this one is 144 random bits,
# and no work factor adds anything to 2^143 guesses (docs/protocol.md §5). Keys hashed
# with the earlier parameters (m=8 MiB, ~5 ms) still verify and are re-hashed on use.
_HASHER = PasswordHasher(time_cost=1, memory_cost=256, parallelism=1, type=Type.ID)


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
    """Blocking (~0.1 ms): call through a thread."""
    return _HASHER.hash(api_key)


def api_key_hash_outdated(stored_hash: str) -> bool:
    """True when `stored_hash` was made with other parameters than new hashes get."""
    try:
        return _HASHER.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return False


def verify_api_key(stored_hash: str, presented: str) -> bool:
    """Blocking (~0.1 ms; more for hashes with older parameters): call through a thread."""
    try:
        return _HASHER.verify(stored_hash, presented)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
