"""Satellite API-key authentication (docs/protocol.md §5).

Look the key up by the key id it carries, verify it once with Argon2id in a
thread (under a small semaphore), then cache the success keyed by a keyed
digest of the presented key, with a sliding lifetime. Failures are cached
briefly. Every cache hit is checked against the satellite's current key
generation in the in-memory fleet, so a rotated key stops working as soon as
this instance knows about the rotation (at once through the bus; within one
refresh interval for changes made by another process such as the CLI).

While the bus cannot be trusted (a networked bus disconnected, or reconnected
but not yet re-read: `rt.fleet.in_sync()` is False), rotations made on other
instances may not have reached memory, so the satellite's row is read from the
database for every request instead: a cache hit is confirmed against the stored
key generation and a key id is looked up in the database, never in memory. The
cache itself is kept (re-verifying every key with Argon2 during an outage would
cost CPU and prove nothing more).

The first successful authentication with a key an operator rotated in clears
the satellite's `rotated_key_unused` flag (one conditional write, once), which
ends the re-registration of that satellite by an unbound token (docs/protocol.md §4).

Repeated failures from one address are rate limited (API keys and
registration tokens together); keys already verified keep working from that
address (fleets share NAT addresses). Failures are counted after the fact, not
reserved in advance as logins are: API keys carry 144 random bits (24 characters) that no
number of guesses finds, the Argon2 work is bounded by the verification
semaphore, and concurrent verifications of one presented key share one result
(so a burst of the same wrong key costs one hash). Reserving would instead
refuse legitimate satellites behind one NAT address while a restart
re-verifies their keys.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, NoReturn

from app.auth.api_keys import api_key_hash_outdated, hash_api_key, parse_api_key
from app.auth.bearer import bearer_credential
from app.bus import Channels
from app.db import DATABASE_ERRORS
from app.errors import Unauthenticated
from app.models import Satellite
from app.models.enums import SatelliteStatus
from app.services.common.actors import anonymous_actor
from app.services.common.audit import record_audit
from app.services.fleet.state import SatelliteState

if TYPE_CHECKING:
    from app.services.fleet.context import FleetContext

log = logging.getLogger(__name__)

async def note_auth_failure(
    rt: FleetContext, address: str, reason: str, details: dict[str, str | None]
) -> None:
    """Count a failed authentication; when it starts a burst, write a security event and
    announce it (`auth.failure_burst`, which the alert rules read)."""
    if await rt.auth_failures.record_failure(address):
        await record_audit(
            "security.auth_failure_burst",
            actor=anonymous_actor(address),
            details={"reason": reason, **details},
        )
        await rt.bus.publish(Channels.AUTH_FAILURE_BURST, {"address": address, "reason": reason})
        log.warning("authentication failure burst", extra={"op": "auth", "address": address})


async def authenticate_satellite(
    rt: FleetContext, authorization: str | None, address: str
) -> SatelliteState:
    """Resolve `Authorization: Bearer <api_key>` to the satellite's in-memory state.

    Raises `Unauthenticated` (401 `unauthorized`) or `RateLimited` (429) for an
    address with too many recent failures (cached keys keep working).
    """
    cache = rt.key_cache
    presented = bearer_credential(authorization) or ""
    digest = cache.digest(presented)
    trusted = rt.fleet.in_sync()
    hit = cache.verified(digest) if presented else None
    if hit is not None:
        state = rt.fleet.get(hit.satellite_id) if trusted else await _reread(rt, hit.satellite_id)
        if state is not None and state.key_generation == hit.key_generation:
            if state.rotated_key_unused:
                await _note_rotated_key_used(state, hit.key_generation)
            return state
        cache.forget(digest)
    await rt.auth_failures.check(address)
    parsed = parse_api_key(presented) if presented else None
    if parsed is None or cache.recently_failed(digest):
        reason = "malformed_header" if parsed is None else "recently_failed_key"
        key_id = parsed.key_id if parsed else None
        await _fail(rt, digest, address, reason, key_id)
    state = rt.fleet.by_key_id(parsed.key_id) if trusted else None
    if state is None:
        row = await Satellite.get_or_none(api_key_id=parsed.key_id)
        if row is not None and row.status is not SatelliteStatus.DELETED:
            state = rt.fleet.apply_row(row)
    if state is None or state.key_hash is None or state.key_id != parsed.key_id:
        await _fail(rt, digest, address, "unknown_key_id", parsed.key_id)
    generation = state.key_generation
    if not await cache.verify(digest, state.key_hash, presented):
        rt.metrics.key_verifications.labels(outcome="failed").inc()
        await _fail(rt, digest, address, "wrong_secret", parsed.key_id)
    rt.metrics.key_verifications.labels(outcome="ok").inc()
    if state.key_generation != generation:  # rotated while we were verifying
        await _fail(rt, digest, address, "key_rotated", parsed.key_id)
    cache.remember_success(digest, state.id, generation)
    if api_key_hash_outdated(state.key_hash):
        await _rehash(state, presented)
    if state.rotated_key_unused:
        await _note_rotated_key_used(state, generation)
    return state


async def _note_rotated_key_used(state: SatelliteState, generation: int) -> None:
    """The first authentication with a key an operator rotated in: from now on an unbound
    registration token no longer re-registers the satellite (docs/protocol.md §4).

    One conditional UPDATE, only while memory still says unused (other instances may
    repeat it once, harmlessly). A database failure never fails the request: memory
    keeps the flag, so the next authentication tries again.
    """
    state.rotated_key_unused = False
    try:
        await Satellite.filter(
            id=state.id, key_generation=generation, rotated_key_unused=True
        ).update(rotated_key_unused=False)
    except DATABASE_ERRORS:
        if state.key_generation == generation:
            state.rotated_key_unused = True
        log.warning("recording the first use of a rotated key failed; retrying with the next "
                    "request", exc_info=True, extra={"op": "auth", "satellite_id": state.id})


async def _rehash(state: SatelliteState, presented: str) -> None:
    """Store the key's hash with the current parameters (docs/protocol.md §5), once:
    only where the row still holds the old hash. A failure is retried at the next
    verification of this key (memory keeps the old hash)."""
    old_hash = state.key_hash
    new_hash = await asyncio.to_thread(hash_api_key, presented)
    try:
        await Satellite.filter(id=state.id, api_key_hash=old_hash).update(api_key_hash=new_hash)
    except DATABASE_ERRORS:
        log.warning("re-hashing an API key failed; retrying at its next verification",
                    exc_info=True, extra={"op": "auth", "satellite_id": state.id})
        return
    if state.key_hash == old_hash:
        state.key_hash = new_hash


async def _reread(rt: FleetContext, satellite_id: str) -> SatelliteState | None:
    """The satellite as the database has it now (memory updated), None if gone."""
    row = await Satellite.get_or_none(id=satellite_id)
    if row is None:
        return None
    return rt.fleet.apply_row(row)  # None for a deleted satellite


async def _fail(
    rt: FleetContext, digest: bytes, address: str, reason: str, key_id: str | None
) -> NoReturn:
    rt.key_cache.remember_failure(digest)
    await note_auth_failure(rt, address, reason, {"key_id": key_id})
    raise Unauthenticated("Invalid or missing API key")
