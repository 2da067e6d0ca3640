"""Telling database trouble apart from bugs, for the two error mappings (REST, GraphQL).

- A lost or refused database connection is not the client's fault and not a bug
  in the handler: it answers 503 `database_unavailable` with `Retry-After`, and
  the pool reconnects by itself once the database is back (no restart).
- A value the database cannot hold (longer than its column, so an id that cannot
  exist; NUL or an unpaired surrogate, which PostgreSQL or UTF-8 refuse) is the
  client's: 400 / VALIDATION, with a message that never echoes the value.

A connection reset *by the client* (it gave up waiting) raises the same
`ConnectionResetError` as a database connection that broke; the transports tell
them apart by their own socket (`app.rest.errors.client_went_away`) before asking here.
"""

from __future__ import annotations

from tortoise.exceptions import DBConnectionError
from tortoise.exceptions import ValidationError as FieldValidationError

from app.errors import Unavailable, ValidationError

RETRY_AFTER_SECONDS = 5
# The one wording of "the database did not answer", wherever it is said (REST, GraphQL,
# /api/health).
DATABASE_UNREACHABLE = "The database is unreachable; retry shortly"
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (DBConnectionError, ConnectionError)
_VALUE_ERRORS: tuple[type[BaseException], ...] = (FieldValidationError, UnicodeEncodeError)
try:  # asyncpg is installed with the PostgreSQL extra of tortoise
    import asyncpg

    _CONNECTION_ERRORS += (
        asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
        asyncpg.CannotConnectNowError,
    )
    _VALUE_ERRORS += (asyncpg.DataError,)
except ImportError:  # pragma: no cover
    pass

_CHAIN_DEPTH = 5


def _in_chain(error: BaseException, kinds: tuple[type[BaseException], ...]) -> bool:
    seen: BaseException | None = error
    for _ in range(_CHAIN_DEPTH):
        if seen is None:
            return False
        if isinstance(seen, kinds):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def database_unavailable(error: BaseException) -> Unavailable | None:
    """The 503 for a database connection failure (also when wrapped), else None."""
    if not _in_chain(error, _CONNECTION_ERRORS):
        return None
    unavailable = Unavailable(DATABASE_UNREACHABLE, code="database_unavailable")
    unavailable.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return unavailable


def unstorable_value(error: BaseException) -> ValidationError | None:
    """The 400 for a client value the database cannot hold (also when wrapped), else None."""
    if not _in_chain(error, _VALUE_ERRORS):
        return None
    return ValidationError(
        "A value is too long for its field or contains characters that cannot be stored "
        "(NUL, unpaired surrogates); no object has such an id")


__all__ = ["DATABASE_UNREACHABLE", "RETRY_AFTER_SECONDS", "database_unavailable",
           "unstorable_value"]
