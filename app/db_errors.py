"""Telling "the database is unreachable" apart from bugs (issue 5: 503 fast, clear error).

A lost or refused database connection is not the client's fault and not a bug
in the handler: it answers 503 `database_unavailable` with `Retry-After`, and
the pool reconnects by itself once the database is back (no restart).
"""

from __future__ import annotations

from tortoise.exceptions import DBConnectionError

from app.errors import Unavailable

RETRY_AFTER_SECONDS = 5
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (DBConnectionError, ConnectionError)
try:  # asyncpg is installed with the PostgreSQL extra of tortoise
    import asyncpg

    _CONNECTION_ERRORS += (
        asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
        asyncpg.CannotConnectNowError,
    )
except ImportError:  # pragma: no cover
    pass


def database_unavailable(error: BaseException) -> Unavailable | None:
    """The 503 for a database connection failure (also when wrapped), else None."""
    seen: BaseException | None = error
    for _ in range(5):
        if seen is None:
            return None
        if isinstance(seen, _CONNECTION_ERRORS):
            unavailable = Unavailable(
                "The database is unreachable; retry shortly", code="database_unavailable"
            )
            unavailable.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return unavailable
        seen = seen.__cause__ or seen.__context__
    return None


__all__ = ["RETRY_AFTER_SECONDS", "database_unavailable"]
