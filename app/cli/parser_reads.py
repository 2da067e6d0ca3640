"""The read commands' arguments (and `user reset-password`): each `list` takes `--json`
(one JSON array), each `show` `--json` (one JSON object); docs/operations.md §3."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import UTC, datetime

from app.cli import commands, reads
from app.cli.arguments import (
    Subparsers,
    add_json_flag,
    add_password_flag,
    enum_choice,
    group,
    metavar,
    positive_int,
)
from app.models.enums import CommandStatus


@dataclass(frozen=True, slots=True)
class Groups:
    """The command groups the read commands join (`team`, `catalog`, …)."""

    team: Subparsers
    catalog: Subparsers
    install: Subparsers
    command: Subparsers
    satellite: Subparsers


def _listing(group_parsers: Subparsers, what: str, handler: commands.Handler) -> None:
    listing = group_parsers.add_parser(
        "list", help=f"list {what}", description=f"List {what} as a table, or with --json as "
        "one JSON array.")
    add_json_flag(listing)
    listing.set_defaults(handler=handler, required_flags=())


def _showing(group_parsers: Subparsers, what: str, key: str, metavar_: str, help_text: str,
             handler: commands.Handler) -> None:
    show = group_parsers.add_parser(
        "show", help=f"show one {what}", description=f"Show one {what} ({help_text}), or with "
        "--json as one JSON object.")
    show.add_argument(key, metavar=metavar_)
    add_json_flag(show, "one JSON object")
    show.set_defaults(handler=handler, required_flags=())


def _add_team_reads(team: Subparsers) -> None:
    _listing(team, "teams", reads.team_list)
    _showing(team, "team", "team", "SLUG|ID", "with its members", reads.team_show)


def _add_users(subparsers: Subparsers) -> None:
    user = group(subparsers, "user", "people who sign in (GraphQL)")
    _listing(user, "users (never their password hashes)", reads.user_list)
    _showing(user, "user", "user", "EMAIL|ID", "with their teams; never the password hash",
             reads.user_show)
    reset = user.add_parser(
        "reset-password", help="set a user's password without the current one; ends their "
        "sessions", description="Set a user's password without knowing the current one (for "
        "a locked-out person) and end every session of theirs. The password comes from "
        "--password, else GROUNDSTATION_ADMIN_PASSWORD, else a prompt. Audited. Prints how "
        "many sessions ended.")
    reset.add_argument("user", metavar="EMAIL|ID")
    add_password_flag(reset)
    reset.set_defaults(handler=commands.user_reset_password)


def _add_command_reads(command: Subparsers) -> None:
    listing = command.add_parser(
        "list", help="list commands, newest first",
        description="List commands, newest first, as a table, or with --json as one JSON "
        "array.")
    listing.add_argument("--satellite", metavar="ID", help="only this satellite's")
    listing.add_argument("--status", type=enum_choice(CommandStatus),
                         metavar=metavar(CommandStatus), help="only commands in this status")
    listing.add_argument("--limit", type=positive_int, default=reads.DEFAULT_COMMAND_LIMIT,
                         metavar="N", help=f"at most N (default {reads.DEFAULT_COMMAND_LIMIT})")
    add_json_flag(listing)
    listing.set_defaults(handler=reads.command_list)
    _showing(command, "command", "id", "ID", "its payload, result or error, attempts",
             reads.command_show)


def _timestamp(raw: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO 8601 time such as 2026-12-05T10:00:00Z, got {raw!r}") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _add_metrics(subparsers: Subparsers) -> None:
    metrics = group(subparsers, "metrics", "a satellite's metric history")
    export = metrics.add_parser(
        "export", help="export a satellite's metric history (per minute or hour)",
        description="Print a satellite's heartbeat metrics per minute or hour in [--from, "
        "--to) (default: the last 24 hours): sample count, CPU, memory and disk minimum, "
        "average and maximum, process count range, error count maximum. A table, or CSV "
        "(--csv) for a spreadsheet, or one JSON array (--json). At most 10,000 buckets; "
        "minute buckets are kept GROUNDSTATION_METRICS_MINUTE_RETENTION_DAYS days.")
    export.add_argument("--satellite", required=True, metavar="ID", help="the satellite")
    export.add_argument("--from", dest="from_", type=_timestamp, metavar="TIME",
                        help="start (ISO 8601; default 24 hours before --to)")
    export.add_argument("--to", type=_timestamp, metavar="TIME", help="end (default now)")
    export.add_argument("--resolution", choices=("minute", "hour"), default="minute",
                        help="bucket size (default minute)")
    formats = export.add_mutually_exclusive_group()
    formats.add_argument("--csv", action="store_true", help="print CSV with a header line")
    formats.add_argument("--json", action="store_true", help="print one JSON array")
    export.set_defaults(handler=reads.metrics_export)


def add_reads(subparsers: Subparsers, groups: Groups) -> None:
    _add_team_reads(groups.team)
    _add_users(subparsers)
    _add_metrics(subparsers)
    _listing(groups.catalog, "the catalogue's MCP server templates", reads.catalog_list)
    _showing(groups.catalog, "catalogue server", "slug", "SLUG",
             "its whole template and schemas", reads.catalog_show)
    install_list = groups.install.add_parser(
        "list", help="list installations",
        description="List installations as a table, or with --json as one JSON array.")
    install_list.add_argument("--team", metavar="SLUG", help="only this team's")
    add_json_flag(install_list)
    install_list.set_defaults(handler=reads.install_list, required_flags=())
    _showing(groups.install, "installation", "id", "ID",
             "with the config a satellite would receive, secrets masked", reads.install_show)
    _add_command_reads(groups.command)
    _showing(groups.satellite, "satellite", "id", "ID",
             "its processes, last heartbeat and the config it last applied",
             reads.satellite_show)
    _listing(groups.satellite, "satellites (the same as 'groundstation satellites')",
             commands.satellites_list)


__all__ = ["Groups", "add_reads"]
