"""Login sessions for people (design.md §3, §5).

A session token is 32 random bytes (url-safe base64) shown once, at login; the
database keeps only its keyed digest (HMAC-SHA256 with the sessions subkey), so
a copy of the database logs nobody in. Sessions expire after
`session_idle_seconds` without use (sliding, refreshed at most once a minute).

Logins are rate limited by address and by email together; an unknown email
costs one dummy Argon2 verify, so timing and answers never tell which emails
exist. Ending sessions (logout, password change) is announced on the bus so
their live subscriptions are closed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from app.auth.passwords import hash_password, needs_rehash, verify_password, verify_unknown_user
from app.bus import Bus, Channels
from app.errors import Unauthenticated, ValidationError
from app.models import Session, User
from app.services.actors import anonymous_actor
from app.services.audit import record_audit
from app.services.clock import utcnow
from app.services.fleet import wait_or_stop
from app.services.principals import Principal, load_principal
from app.services.users import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, normalize_email

if TYPE_CHECKING:
    from app.services.runtime import Runtime

log = logging.getLogger(__name__)

TOKEN_BYTES = 32
# Longest token accepted from a client: anything longer cannot be one of ours.
MAX_TOKEN_LENGTH = 128
_TOUCH_INTERVAL = timedelta(minutes=1)
_INVALID_LOGIN = "Invalid email or password"


class SessionCache:
    """Recently verified sessions → their principal, for a few seconds.

    Saves the three queries of `authenticate_session` on busy dashboards. Ending a
    session or changing a membership evicts at once on every instance (the bus);
    changes made by another process (the CLI) show within `ttl` seconds.
    """

    def __init__(self, ttl: float = 5.0, max_entries: int = 10_000) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._entries: OrderedDict[str, tuple[Principal, datetime, float]] = OrderedDict()

    def get(self, digest: str, now: datetime) -> Principal | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        principal, expires_at, cached_at = entry
        if expires_at <= now or time.monotonic() - cached_at > self._ttl:
            del self._entries[digest]
            return None
        return principal

    def put(self, digest: str, principal: Principal, expires_at: datetime) -> None:
        self._entries[digest] = (principal, expires_at, time.monotonic())
        self._entries.move_to_end(digest)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def evict_sessions(self, digests: Iterable[str]) -> None:
        for digest in digests:
            self._entries.pop(digest, None)

    def evict_user(self, user_id: str) -> None:
        for digest in [key for key, (principal, _, _) in self._entries.items()
                       if principal.user_id == user_id]:
            del self._entries[digest]

    async def follow(self, bus: Bus, stop: asyncio.Event) -> None:
        """Evict on ended sessions and membership changes, from any instance.

        A dropped subscription forgets everything (rather than risk stale rights)
        and subscribes again, until `stop`.
        """
        channels = [Channels.SESSIONS_ENDED, Channels.MEMBERSHIPS_CHANGED]
        while not stop.is_set():
            async for channel, message in bus.subscribe(channels):
                if channel == Channels.SESSIONS_ENDED:
                    self.evict_sessions(str(item) for item in message.get("session_ids") or [])
                elif channel == Channels.MEMBERSHIPS_CHANGED and isinstance(
                    message.get("user_id"), str
                ):
                    self.evict_user(message["user_id"])
            self._entries.clear()
            await wait_or_stop(stop, 0.1)


@dataclass(frozen=True, slots=True)
class LoginResult:
    token: str
    user: User
    principal: Principal


def session_digest(rt: Runtime, token: str) -> str:
    return hmac.new(rt.keys.sessions, token.encode(), hashlib.sha256).hexdigest()


def _limit_keys(address: str | None, email: str) -> tuple[str, str]:
    return f"address:{address or 'unknown'}", f"email:{email}"


async def _check_password(rt: Runtime, user: User | None, password: str,
                          address: str | None, email: str) -> bool:
    """Verify with the login limiter around it.

    The attempt is counted against the address and the email *before* the hash is
    checked (and taken back when the password is right), so concurrent guesses cannot
    all slip past the limit: at most `login_failure_limit` are ever checked per window.
    """
    keys = _limit_keys(address, email)
    for key in keys:

        async def burst(key: str = key) -> None:
            await record_audit("security.login_failure_burst", actor=anonymous_actor(address),
                               details={"limited": key.split(":", 1)[0]})

        await rt.login_failures.reserve(key, on_burst=burst)
    if len(password) > MAX_PASSWORD_LENGTH:  # bounds the Argon2 work a client can ask for
        ok = False
    elif user is None:
        ok = await verify_unknown_user(password)
    else:
        ok = await verify_password(user.password_hash, password)
    if ok:
        for key in keys:
            await rt.login_failures.release(key)
    return ok


async def login(
    rt: Runtime, *, email: str, password: str, address: str | None,
    user_agent: str | None = None,
) -> LoginResult:
    """Check email + password and open a session; the token is returned only here."""
    normalized = normalize_email(email)[:254]
    user = await User.get_or_none(email=normalized)
    if not await _check_password(rt, user, password, address, normalized) or user is None:
        await record_audit("user.login_failed", actor=anonymous_actor(address),
                           object_type="user", object_id=user.id if user else None)
        raise Unauthenticated(_INVALID_LOGIN, code="invalid_credentials")
    if needs_rehash(user.password_hash):
        user.password_hash = await hash_password(password)
        await User.filter(id=user.id).update(password_hash=user.password_hash)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = utcnow()
    session = await Session.create(
        id=session_digest(rt, token), user_id=user.id, last_seen_at=now,
        expires_at=now + timedelta(seconds=rt.settings.session_idle_seconds),
        address=address, user_agent=(user_agent or "")[:255] or None,
    )
    principal = await load_principal(user.id, session_id=session.id, address=address)
    assert principal is not None
    await record_audit("user.login", actor=principal.actor, object_type="user",
                       object_id=user.id)
    return LoginResult(token, user, principal)


async def authenticate_session(
    rt: Runtime, token: str | None, *, address: str | None = None
) -> Principal | None:
    """The principal of a live session token, or None (missing, unknown or expired)."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    digest = session_digest(rt, token)
    now = utcnow()
    # While the bus may be missing messages (another instance's logout), ask the database.
    cached = rt.session_cache.get(digest, now) if rt.fleet.in_sync() else None
    if cached is not None:
        return replace(cached, address=address)
    session = await Session.get_or_none(id=digest)
    if session is None:
        return None
    expires_at = session.expires_at
    if expires_at <= now:
        await Session.filter(id=digest).delete()
        return None
    if now - session.last_seen_at >= _TOUCH_INTERVAL:
        expires_at = now + timedelta(seconds=rt.settings.session_idle_seconds)
        await Session.filter(id=digest).update(last_seen_at=now, expires_at=expires_at)
    principal = await load_principal(
        session.user_id, session_id=digest, address=address  # type: ignore[attr-defined]
    )
    if principal is not None:
        rt.session_cache.put(digest, principal, expires_at)
    return principal


async def _end_sessions(rt: Runtime, session_ids: list[str], reason: str) -> None:
    if not session_ids:
        return
    await Session.filter(id__in=session_ids).delete()
    rt.session_cache.evict_sessions(session_ids)
    await rt.bus.publish(Channels.SESSIONS_ENDED, {"session_ids": session_ids, "reason": reason})


async def logout(rt: Runtime, principal: Principal) -> None:
    """End the caller's session (and with it, its live subscriptions)."""
    if principal.session_id is not None:
        await _end_sessions(rt, [principal.session_id], "logout")
    await record_audit("user.logout", actor=principal.actor, object_type="user",
                       object_id=principal.user_id)


async def change_password(
    rt: Runtime, principal: Principal, *, current_password: str, new_password: str
) -> None:
    """Replace the caller's password (the current one is checked like a login) and end
    every other session of the user."""
    user = await User.get_or_none(id=principal.user_id)
    if user is None or not await _check_password(
        rt, user, current_password, principal.address, user.email
    ):
        raise Unauthenticated("The current password is not correct", code="invalid_credentials")
    if not MIN_PASSWORD_LENGTH <= len(new_password) <= MAX_PASSWORD_LENGTH:
        raise ValidationError(
            f"Passwords have {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters",
            details=[{"field": "newPassword", "message": "invalid length"}],
        )
    await User.filter(id=user.id).update(password_hash=await hash_password(new_password),
                                         updated_at=utcnow())
    others: list[str] = await Session.filter(user_id=user.id).exclude(  # type: ignore[assignment]
        id=principal.session_id or ""
    ).values_list("id", flat=True)
    await _end_sessions(rt, others, "password_changed")
    await record_audit("user.password_changed", actor=principal.actor, object_type="user",
                       object_id=user.id, details={"sessions_ended": len(others)})


EXPIRED_SESSIONS_PER_RUN = 1000


async def end_expired_sessions(rt: Runtime) -> int:
    """End sessions idle past their expiry, like a logout: deleted, evicted from every
    instance's cache, and their open subscriptions and SSE streams closed (a socket
    opened while the session was valid must not outlive it). The sessions job runs this."""
    expired: list[str] = await Session.filter(  # type: ignore[assignment]
        expires_at__lte=utcnow()
    ).order_by("expires_at").limit(EXPIRED_SESSIONS_PER_RUN).values_list("id", flat=True)
    await _end_sessions(rt, expired, "session_expired")
    return len(expired)


__all__ = [
    "LoginResult",
    "SessionCache",
    "authenticate_session",
    "change_password",
    "login",
    "logout",
    "end_expired_sessions",
    "session_digest",
]
