"""People: creating users and finding them by email (docs/graphql.md §3)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from tortoise.exceptions import IntegrityError

from app.errors import Conflict, NotFound, ValidationError
from app.models import User
from app.models.enums import GlobalRole
from app.services.common.actors import Actor
from app.services.common.audit import record_audit

if TYPE_CHECKING:
    from app.services.people.context import PeopleContext

MIN_PASSWORD_LENGTH = 8
# Bounds the Argon2 work an attacker can ask for.
MAX_PASSWORD_LENGTH = 1024
MAX_EMAIL_LENGTH = 254
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def normalize_email(email: str) -> str:
    """Emails are stored and compared trimmed and lower-case."""
    return email.strip().lower()


def _validate_email(email: str) -> str:
    normalized = normalize_email(email)
    if len(normalized) > MAX_EMAIL_LENGTH or not _EMAIL_RE.fullmatch(normalized):
        raise ValidationError(
            "Not a valid email address", details=[{"field": "email", "message": "invalid email"}]
        )
    return normalized


def check_new_password(password: str, field: str) -> None:
    """Every new password (a user's first, a change, a reset) has 8 to 1024 characters."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise ValidationError(
            f"Passwords have {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters",
            details=[{"field": field, "message": "invalid length"}],
        )


async def create_user(
    rt: PeopleContext, *, email: str, password: str, global_role: GlobalRole, actor: Actor
) -> User:
    """Create a user. The email is normalised to lower case and must look like an
    address; passwords have at least 8 characters; an email already in use → 409
    `email_taken`. The password is stored only as an Argon2id hash."""
    normalized = _validate_email(email)
    check_new_password(password, "password")
    if await User.exists(email=normalized):
        raise Conflict("A user with this email already exists", code="email_taken")
    password_hash = await rt.passwords.hash(password)
    try:
        user = await User.create(
            email=normalized, password_hash=password_hash, global_role=GlobalRole(global_role)
        )
    except IntegrityError as error:  # created concurrently
        raise Conflict("A user with this email already exists", code="email_taken") from error
    await record_audit(
        "user.created",
        actor=actor,
        object_type="user",
        object_id=user.id,
        details={"email": normalized, "global_role": user.global_role.value},
    )
    return user


async def get_user_by_email(email: str) -> User:
    """The user with this email (any case); NotFound otherwise."""
    user = await User.get_or_none(email=normalize_email(email))
    if user is None:
        raise NotFound(f"User not found (email '{normalize_email(email)}')",
                       code="user_not_found")
    return user
