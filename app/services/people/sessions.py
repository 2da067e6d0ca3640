"""Login sessions for people (docs/graphql.md §1).

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

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING

from app.bus import Channels
from app.errors import Unauthenticated
from app.models import Session, User
from app.services.common.actors import Actor, anonymous_actor
from app.services.common.audit import record_audit
from app.services.people.principals import Principal, load_principal
from app.services.people.users import MAX_PASSWORD_LENGTH, check_new_password, normalize_email

if TYPE_CHECKING:
    from app.services.people.context import PeopleContext

log = logging.getLogger(__name__)

TOKEN_BYTES = 32
# Longest token accepted from a client: anything longer cannot be one of ours.
MAX_TOKEN_LENGTH = 128
_TOUCH_INTERVAL = timedelta(minutes=1)
_INVALID_LOGIN = "Invalid email or password"


@dataclass(frozen=True, slots=True)
class LoginResult:
    token: str
    user: User
    principal: Principal


def session_digest(rt: PeopleContext, token: str) -> str:
    return hmac.new(rt.keys.sessions, token.encode(), hashlib.sha256).hexdigest()


def _limit_keys(address: str | None, email: str) -> tuple[str, str]:
    return f"address:{address or 'unknown'}", f"email:{email}"


async def _check_password(rt: PeopleContext, user: User | None, password: str,
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
        ok = await rt.passwords.verify_unknown_user(password)
    else:
        ok = await rt.passwords.verify(user.password_hash, password)
    if ok:
        for key in keys:
            await rt.login_failures.release(key)
    return ok


async def login(
    rt: PeopleContext, *, email: str, password: str, address: str | None,
    user_agent: str | None = None,
) -> LoginResult:
    """Check email + password and open a session; the token is returned only here."""
    normalized = normalize_email(email)[:254]
    user = await User.get_or_none(email=normalized)
    if not await _check_password(rt, user, password, address, normalized) or user is None:
        await record_audit("user.login_failed", actor=anonymous_actor(address),
                           object_type="user", object_id=user.id if user else None)
        raise Unauthenticated(_INVALID_LOGIN, code="invalid_credentials")
    if rt.passwords.needs_rehash(user.password_hash):
        user.password_hash = await rt.passwords.hash(password)
        await User.filter(id=user.id).update(password_hash=user.password_hash)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = rt.clock.now()
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
    rt: PeopleContext, token: str | None, *, address: str | None = None
) -> Principal | None:
    """The principal of a live session token, or None (missing, unknown or expired)."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    digest = session_digest(rt, token)
    now = rt.clock.now()
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


async def _end_sessions(rt: PeopleContext, session_ids: list[str], reason: str) -> None:
    if not session_ids:
        return
    await Session.filter(id__in=session_ids).delete()
    rt.session_cache.evict_sessions(session_ids)
    await rt.bus.publish(Channels.SESSIONS_ENDED, {"session_ids": session_ids, "reason": reason})


async def logout(rt: PeopleContext, principal: Principal) -> None:
    """End the caller's session (and with it, its live subscriptions)."""
    if principal.session_id is not None:
        await _end_sessions(rt, [principal.session_id], "logout")
    await record_audit("user.logout", actor=principal.actor, object_type="user",
                       object_id=principal.user_id)


async def _set_password(rt: PeopleContext, user: User, new_password: str, *,
                        keep_session: str | None, reason: str) -> int:
    """Store the new password's hash and end the user's sessions but `keep_session`
    (their live subscriptions close with them); the number ended."""
    await User.filter(id=user.id).update(password_hash=await rt.passwords.hash(new_password),
                                         updated_at=rt.clock.now())
    ended: list[str] = await Session.filter(user_id=user.id).exclude(  # type: ignore[assignment]
        id=keep_session or ""
    ).values_list("id", flat=True)
    await _end_sessions(rt, ended, reason)
    return len(ended)


async def change_password(
    rt: PeopleContext, principal: Principal, *, current_password: str, new_password: str
) -> None:
    """Replace the caller's password (the current one is checked like a login) and end
    every other session of the user."""
    user = await User.get_or_none(id=principal.user_id)
    if user is None or not await _check_password(
        rt, user, current_password, principal.address, user.email
    ):
        raise Unauthenticated("The current password is not correct", code="invalid_credentials")
    check_new_password(new_password, "newPassword")
    ended = await _set_password(rt, user, new_password, keep_session=principal.session_id,
                                reason="password_changed")
    await record_audit("user.password_changed", actor=principal.actor, object_type="user",
                       object_id=user.id, details={"sessions_ended": ended})


async def reset_password(rt: PeopleContext, user: User, *, new_password: str, actor: Actor
                         ) -> int:
    """Set a user's password without knowing the current one (an operator's reset for a
    locked-out person: `groundstation user reset-password`), with the rules of
    `change_password`; every session of the user ends. Audited; the number ended."""
    check_new_password(new_password, "password")
    ended = await _set_password(rt, user, new_password, keep_session=None,
                                reason="password_reset")
    await record_audit("user.password_reset", actor=actor, object_type="user",
                       object_id=user.id, details={"sessions_ended": ended})
    return ended


EXPIRED_SESSIONS_PER_RUN = 1000


async def end_expired_sessions(rt: PeopleContext) -> int:
    """End sessions idle past their expiry, like a logout: deleted, evicted from every
    instance's cache, and their open subscriptions and SSE streams closed (a socket
    opened while the session was valid must not outlive it). The sessions job runs this."""
    expired: list[str] = await Session.filter(  # type: ignore[assignment]
        expires_at__lte=rt.clock.now()
    ).order_by("expires_at").limit(EXPIRED_SESSIONS_PER_RUN).values_list("id", flat=True)
    await _end_sessions(rt, expired, "session_expired")
    return len(expired)


__all__ = [
    "LoginResult",
    "authenticate_session",
    "change_password",
    "login",
    "logout",
    "end_expired_sessions",
    "reset_password",
    "session_digest",
]
