"""Why the database cannot be used, said in one line for a person (docs/operations.md §3).

A command, `serve` and `doctor` report a database they cannot use with one line that
says it is the database, names it (host, port and database, or the SQLite file; never
a password) and says what to do: never a driver's class name or raw errno text. The
same for the SQLite file that is missing, which only the commands that may create a
database create (with the default data directory, never a directory that
DATABASE_URL names).
"""

from __future__ import annotations

import contextlib
import errno
import socket
import sqlite3
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

import asyncpg
from tortoise.exceptions import DBConnectionError

from app.config import Settings
from app.errors import Unavailable

_CHAIN_DEPTH = 6
_CHECK_URL = "check DATABASE_URL"


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: BaseException | None = error
    for _ in range(_CHAIN_DEPTH):
        if seen is None:
            return
        yield seen
        seen = seen.__cause__ or seen.__context__


def describe_database(settings: Settings) -> str:
    """The database without credentials or query: the SQLite file, else
    `postgres://user@host:port/name`."""
    path = settings.sqlite_path
    if settings.is_sqlite:
        return "an in-memory SQLite database" if path is None else str(path)
    parts = urlsplit(settings.database_url)
    user = f"{unquote(parts.username)}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return f"postgres://{user}{parts.hostname or 'localhost'}{port}{parts.path}"


def _postgres_names(settings: Settings) -> tuple[str, str, str]:
    """(host:port, database name, user) of a PostgreSQL URL, for messages."""
    parts = urlsplit(settings.database_url)
    where = f"{parts.hostname or 'localhost'}:{parts.port or 5432}"
    return where, parts.path.lstrip("/") or "(default)", unquote(parts.username or "")


def _os_reason(error: OSError) -> str:
    if isinstance(error, socket.gaierror):
        return "the host name does not resolve"
    if isinstance(error, TimeoutError) or error.errno == errno.ETIMEDOUT:
        return "no answer (timed out)"
    if isinstance(error, ConnectionRefusedError) or error.errno == errno.ECONNREFUSED:
        return "connection refused"
    text = error.strerror or "the connection failed"
    return text[0].lower() + text[1:]


def _postgres_problem(settings: Settings, error: BaseException) -> str | None:
    where, name, user = _postgres_names(settings)
    target = describe_database(settings)
    # The server's own answer first, wherever it sits in the chain: tortoise wraps it in
    # DBConnectionError, which is itself a ConnectionError (an OSError).
    causes = sorted(_chain(error), key=lambda cause: not isinstance(cause, asyncpg.PostgresError))
    for cause in causes:
        if isinstance(cause, asyncpg.InvalidCatalogNameError):
            return (f"the database '{name}' does not exist on the PostgreSQL server {where}: "
                    f"create it (createdb -h {where.rsplit(':', 1)[0]} {name}) or "
                    f"{_CHECK_URL}")
        if isinstance(cause, asyncpg.InvalidPasswordError
                      | asyncpg.InvalidAuthorizationSpecificationError):
            return (f"the database server {where} refused user '{user}' for the database "
                    f"'{name}': check the user and password in DATABASE_URL")
        if isinstance(cause, asyncpg.CannotConnectNowError | asyncpg.TooManyConnectionsError):
            return (f"the database {target} does not accept connections now (starting, "
                    "stopping or full): retry shortly")
        if isinstance(cause, OSError) and not isinstance(cause, DBConnectionError):
            return (f"cannot connect to the database {target}: {_os_reason(cause)} "
                    f"(is PostgreSQL running there? {_CHECK_URL})")
    if any(isinstance(cause, DBConnectionError) for cause in _chain(error)):
        return f"cannot connect to the database {target} ({_CHECK_URL})"
    return None


def _sqlite_problem(settings: Settings, error: BaseException) -> str | None:
    target = describe_database(settings)
    for cause in _chain(error):
        if isinstance(cause, sqlite3.OperationalError) and "unable to open" in str(cause):
            return (f"cannot open the database file {target}: check that its directory "
                    f"exists and is writable ({_CHECK_URL} or GROUNDSTATION_DATA_DIR)")
        if isinstance(cause, sqlite3.DatabaseError) and "not a database" in str(cause):
            return f"{target} is not an SQLite database file ({_CHECK_URL})"
        if isinstance(cause, PermissionError):
            return f"no permission to use the database file {target}"
    return None


def database_problem(settings: Settings, error: BaseException) -> Unavailable | None:
    """The one-line error for a database that cannot be used, else None (a bug, or an
    error that is not about reaching the database)."""
    problem = (_sqlite_problem if settings.is_sqlite else _postgres_problem)(settings, error)
    return None if problem is None else Unavailable(problem, code="database_unavailable")


@contextlib.contextmanager
def explained(settings: Settings) -> Iterator[None]:
    """Re-raise a failure to reach or open the database as its one-line error."""
    try:
        yield
    except Exception as error:
        problem = database_problem(settings, error)
        if problem is None:
            raise
        raise problem from error


def require_database_file(settings: Settings, *, may_create: bool) -> None:
    """Refuse (one line) an SQLite file that does not exist unless it `may_create`; then
    the default data directory is made (0700) when missing, never a directory that
    only DATABASE_URL names. Nothing to check for PostgreSQL or an in-memory database."""
    path = settings.sqlite_path
    if path is None:
        return
    if path.exists():
        if not path.is_file():
            raise Unavailable(f"{path} is not a database file (set DATABASE_URL or "
                              "GROUNDSTATION_DATA_DIR)", code="database_missing")
        return
    if not may_create:
        raise Unavailable(
            f"no database at {path} (set DATABASE_URL or GROUNDSTATION_DATA_DIR, or run "
            "'groundstation migrate' to create one)", code="database_missing")
    if path.parent.is_dir():
        return
    if not settings.in_data_dir:
        raise Unavailable(
            f"cannot create the database {path}: the directory {path.parent} does not "
            "exist (create it, or fix DATABASE_URL)", code="database_missing")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)


__all__ = ["database_problem", "describe_database", "explained", "require_database_file"]
