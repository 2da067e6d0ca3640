"""The operator's commands around the database itself: `migrate` and `doctor`
(docs/operations.md §3, §8)."""

from __future__ import annotations

from app.cli.arguments import Subparsers, add_json_flag
from app.cli.doctor import doctor_command
from app.cli.migrate import migrate_command


def add_operations(subparsers: Subparsers) -> None:
    migrate = subparsers.add_parser(
        "migrate", help="apply pending database migrations; prints 'applied N migrations' or "
        "'up to date'",
        description="Apply pending database migrations under the migration lock, creating "
        "the database (and the default data directory) when missing. One line per "
        "migration applied on stderr, the summary on stdout. Idempotent. No other command "
        "migrates an existing database but 'serve'.",
    )
    migrate.add_argument("--check", action="store_true",
                         help="change nothing: exit 0 when up to date, else name the pending "
                         "migrations and exit 1")
    migrate.set_defaults(standalone=migrate_command)

    doctor = subparsers.add_parser(
        "doctor", help="check the settings, database, schema, Redis, secret key and clock",
        description="Check the settings, that the database is reachable and its schema up "
        "to date, that Redis answers (when REDIS_URL is set), the secret key (and its "
        "file's permissions on SQLite) and, on PostgreSQL, the clock against the database "
        "server's. Each check says ok, warn, fail or skip and what to fix. Exit 0 when "
        "nothing fails, 1 otherwise. Never creates a database.",
    )
    add_json_flag(doctor, "one JSON object")
    doctor.set_defaults(standalone=doctor_command)


__all__ = ["add_operations"]
