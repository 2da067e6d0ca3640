"""People's passwords: Argon2id with argon2-cffi's defaults (RFC 9106 low-memory).

Unlike satellite API keys, passwords are guessable, so the expensive default
(~156 ms per verify here) is the point. Every hash and verify runs in a thread.
For an unknown email, `verify_unknown_user()` spends the same time on a dummy
hash so response times do not tell which emails exist.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher()
_dummy_hash: str | None = None


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_HASHER.hash, password)


def _verify(stored_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password(stored_hash: str, password: str) -> bool:
    return await asyncio.to_thread(_verify, stored_hash, password)


def needs_rehash(stored_hash: str) -> bool:
    """True when the hash was made with other parameters than today's defaults."""
    try:
        return _HASHER.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


async def verify_unknown_user(password: str) -> bool:
    """Spend one verify on a dummy hash (always False): equal timing for unknown emails."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = await hash_password("dummy password for timing equality")
    await verify_password(_dummy_hash, password)
    return False
