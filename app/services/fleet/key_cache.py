"""Verified API keys, so Argon2 runs once per key and not once per request.

A success is cached under a keyed digest of the presented key with a sliding
lifetime; failures are cached briefly; concurrent verifications of one key share
one Argon2 run. Which satellite a hit belongs to, and whether its key generation
is still current, is the caller's check (`authentication.py`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections import OrderedDict
from dataclasses import dataclass

from app.auth.api_keys import verify_api_key
from app.config import Settings

_MAX_POSITIVE = 200_000
_MAX_NEGATIVE = 20_000


@dataclass(slots=True)
class _Verified:
    satellite_id: str
    key_generation: int
    expires: float


class VerifiedKeyCache:
    def __init__(self, settings: Settings, digest_key: bytes) -> None:
        self._ttl = float(settings.key_cache_ttl_seconds)
        self._negative_ttl = float(settings.key_cache_negative_ttl_seconds)
        self._digest_key = digest_key
        self._verified: OrderedDict[bytes, _Verified] = OrderedDict()
        self._failed: OrderedDict[bytes, float] = OrderedDict()
        self._semaphore: asyncio.Semaphore | None = None
        self._concurrency = settings.key_verify_concurrency
        self._in_flight: dict[bytes, asyncio.Future[bool]] = {}

    def digest(self, presented: str) -> bytes:
        return hmac.new(self._digest_key, presented.encode(), hashlib.sha256).digest()

    def verified(self, digest: bytes) -> _Verified | None:
        entry = self._verified.get(digest)
        if entry is None:
            return None
        now = time.monotonic()
        if entry.expires < now:
            del self._verified[digest]
            return None
        entry.expires = now + self._ttl  # sliding lifetime
        return entry

    def remember_success(self, digest: bytes, satellite_id: str, key_generation: int) -> None:
        self._verified[digest] = _Verified(
            satellite_id, key_generation, time.monotonic() + self._ttl
        )
        self._failed.pop(digest, None)
        while len(self._verified) > _MAX_POSITIVE:
            self._verified.popitem(last=False)

    def recently_failed(self, digest: bytes) -> bool:
        expires = self._failed.get(digest)
        if expires is None:
            return False
        if expires < time.monotonic():
            del self._failed[digest]
            return False
        return True

    def remember_failure(self, digest: bytes) -> None:
        self._failed[digest] = time.monotonic() + self._negative_ttl
        while len(self._failed) > _MAX_NEGATIVE:
            self._failed.popitem(last=False)

    def forget(self, digest: bytes) -> None:
        self._verified.pop(digest, None)

    def evict_satellite(self, satellite_id: str) -> None:
        for digest in [d for d, e in self._verified.items() if e.satellite_id == satellite_id]:
            del self._verified[digest]

    def clear(self) -> None:
        self._verified.clear()
        self._failed.clear()

    async def verify(self, digest: bytes, stored_hash: str, presented: str) -> bool:
        """Argon2-verify `presented` in a thread; concurrent calls for one key share one
        verification (which finishes even if the caller that started it goes away)."""
        task = self._in_flight.get(digest)
        if task is None:
            task = asyncio.ensure_future(self._verify_now(stored_hash, presented))
            self._in_flight[digest] = task
            task.add_done_callback(lambda _: self._in_flight.pop(digest, None))
        return await asyncio.shield(task)

    async def _verify_now(self, stored_hash: str, presented: str) -> bool:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self._concurrency)
        async with self._semaphore:
            return await asyncio.to_thread(verify_api_key, stored_hash, presented)
