"""People's passwords: Argon2id, by default with argon2-cffi's parameters (RFC 9106
low-memory profile: 3 passes over 64 MiB, 4 lanes).

Unlike satellite API keys, passwords are guessable, so the expensive default
(~150 ms per verify here) is the point. The cost is a setting
(`GROUNDSTATION_PASSWORD_HASH_*`, docs/operations.md §1); a hash made with other
parameters than the current ones is redone at the user's next successful login.
Every hash and verify runs in a thread. For an unknown email,
`verify_unknown_user()` spends the same time on a dummy hash so response times do
not tell which emails exist.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


@dataclass(frozen=True, slots=True)
class PasswordCost:
    time_cost: int = 3
    memory_kib: int = 64 * 1024
    parallelism: int = 4


class Passwords:
    """Hash and verify people's passwords at one cost."""

    def __init__(self, cost: PasswordCost = PasswordCost()) -> None:
        self._hasher = PasswordHasher(
            time_cost=cost.time_cost, memory_cost=cost.memory_kib,
            parallelism=cost.parallelism, type=Type.ID,
        )
        self._dummy_hash: str | None = None

    def hash_prefix(self) -> str:
        """What every hash made now starts with (`$argon2id$v=19$m=…,t=…,p=…$`)."""
        hasher = self._hasher
        return f"$argon2id$v=19$m={hasher.memory_cost},t={hasher.time_cost},p={hasher.parallelism}$"

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    def _verify(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def verify(self, stored_hash: str, password: str) -> bool:
        return await asyncio.to_thread(self._verify, stored_hash, password)

    def needs_rehash(self, stored_hash: str) -> bool:
        """True when the hash was made with other parameters than the current ones."""
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True

    async def verify_unknown_user(self, password: str) -> bool:
        """Spend one verify on a dummy hash (always False): equal timing for unknown emails."""
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash("dummy password for timing equality")
        await self.verify(self._dummy_hash, password)
        return False
