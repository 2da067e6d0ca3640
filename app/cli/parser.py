"""The argument tree of docs/operations.md §3. Each leaf names the function that runs it."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from enum import StrEnum
from typing import Any, NoReturn, TypeVar

from app.cli import commands
from app.models.enums import CommandPriority, CommandType, TokenScope

E = TypeVar("E", bound=StrEnum)

PROG = "groundstation"


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit 2), like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see '{self.prog} --help')\n")


def enum_choice(enum_type: type[E]) -> Callable[[str], E]:
    """Accept an enum value in any case (`GLOBAL`, `global`; `-` for `_`)."""
    allowed = ", ".join(member.value for member in enum_type)

    def parse(raw: str) -> E:
        try:
            return enum_type(raw.strip().lower().replace("-", "_"))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"invalid choice {raw!r} (choose from {allowed})"
            ) from None

    return parse


def json_object(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(
            f"not valid JSON ({exc.msg} at position {exc.pos})"
        ) from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object, e.g. '{\"key\": \"value\"}'")
    return value


class KeyValues(argparse.Action):
    """A repeatable `K=V` flag gathered into one dict: split at the first `=` (the value
    may hold more), the key non-empty, each key given once."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        raw = str(values)
        key, separator, value = raw.partition("=")
        if not separator or not key.strip():
            parser.error(f"argument {option_string}: expected KEY=VALUE, got {raw!r}")
        gathered: dict[str, str] = dict(getattr(namespace, self.dest, None) or {})
        if key in gathered:
            parser.error(f"argument {option_string}: {key!r} given twice")
        gathered[key] = value
        setattr(namespace, self.dest, gathered)


def _metavar(enum_type: type[StrEnum]) -> str:
    return "{" + ",".join(member.value for member in enum_type) + "}"


def _group(
    subparsers: argparse._SubParsersAction[Parser], name: str, help_text: str
) -> argparse._SubParsersAction[Parser]:
    group = subparsers.add_parser(name, help=help_text, description=help_text)
    return group.add_subparsers(title="commands", dest=f"{name}_command", required=True,
                                metavar="COMMAND")


def _add_serve(subparsers: argparse._SubParsersAction[Parser]) -> None:
    serve = subparsers.add_parser(
        "serve", help="migrate the database, then serve the API",
        description="Migrate the database, then serve the satellite API. Prints the URL at "
        "start; logs (JSON) go to stderr. Stops gracefully on SIGINT/SIGTERM.",
    )
    serve.add_argument("--host", help="address to listen on (default: GROUNDSTATION_HOST, "
                       "else 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: GROUNDSTATION_PORT, else 3000)")
    serve.set_defaults(handler=None)


def _add_admin(subparsers: argparse._SubParsersAction[Parser]) -> None:
    admin = _group(subparsers, "admin", "administrator accounts")
    create = admin.add_parser(
        "create", help="create a global_admin user; prints the user id",
        description="Create a global_admin user and print its id. The password comes from "
        "--password, else GROUNDSTATION_ADMIN_PASSWORD, else a prompt.",
    )
    create.add_argument("--email", required=True)
    create.add_argument("--password", help="the password (prefer the environment variable "
                        "or the prompt: flags are visible in the process list)")
    create.set_defaults(handler=commands.admin_create)


def _add_team(subparsers: argparse._SubParsersAction[Parser]) -> None:
    team = _group(subparsers, "team", "teams")
    create = team.add_parser(
        "create", help="create a team; prints the team id",
        description="Create a team, optionally with an existing user as its team_admin. "
        "Prints the team id.",
    )
    create.add_argument("--name", required=True)
    create.add_argument("--slug", required=True)
    create.add_argument("--admin", metavar="EMAIL", help="an existing user to make team_admin")
    create.set_defaults(handler=commands.team_create)


def _add_token(subparsers: argparse._SubParsersAction[Parser]) -> None:
    token = _group(subparsers, "token", "satellite registration tokens")
    create = token.add_parser(
        "create", help="issue a registration token; prints the token alone",
        description="Issue a single-use registration token and print it (shown only once). "
        "--name binds it to one satellite name: needed to re-register a live satellite.",
    )
    create.add_argument("--scope", required=True, type=enum_choice(TokenScope),
                        metavar=_metavar(TokenScope))
    create.add_argument("--team", metavar="SLUG", help="the team (required for --scope team)")
    create.add_argument("--hours", type=int, help="lifetime in hours (global 1-24, default 1; "
                        "team 1-72, default 24)")
    create.add_argument("--name", metavar="SATELLITE_NAME",
                        help="bind the token to this satellite name")
    create.set_defaults(handler=commands.token_create)

    listing = token.add_parser(
        "list", help="list registration tokens (never their values)",
        description="List registration tokens as a table or a JSON array; token values are "
        "never stored, so never shown.",
    )
    listing.add_argument("--team", metavar="SLUG", help="only this team's tokens")
    listing.add_argument("--json", action="store_true", help="print one JSON array")
    listing.set_defaults(handler=commands.token_list)

    revoke = token.add_parser(
        "revoke", help="revoke an unused token; prints 'revoked'",
        description="Revoke an unused registration token by its id (the JWT's jti).",
    )
    revoke.add_argument("id", metavar="ID")
    revoke.set_defaults(handler=commands.token_revoke)


def _add_catalog(subparsers: argparse._SubParsersAction[Parser]) -> None:
    catalog = _group(subparsers, "catalog", "the MCP server catalogue")
    load = catalog.add_parser(
        "import", help="create or update MCP server templates from a JSON file; prints the "
        "number imported",
        description="Create or update MCP server templates, by slug, from a JSON catalog file "
        '({"servers": [...]}, docs/catalog.md) and print the number imported. The whole '
        "file is checked first: if any server is invalid, nothing is imported.",
    )
    load.add_argument("file", metavar="FILE", help="the catalog file (JSON)")
    load.set_defaults(handler=commands.catalog_import)


def _add_install(subparsers: argparse._SubParsersAction[Parser]) -> None:
    install = subparsers.add_parser(
        "install", help="install a catalogue MCP server for a team; prints the installation id",
        description="Install a catalogue MCP server for a team (its team-level values), "
        "enqueue a 'configure' command for every satellite that serves it, and print the "
        "installation id. Values are checked against the server's team schemas; values of "
        "secret fields are stored encrypted. An installation missing a required field is "
        "created as 'awaiting_config' and left out of satellite configs until set.",
    )
    install.add_argument("--team", required=True, metavar="SLUG", help="the team")
    install.add_argument("--server", required=True, metavar="SLUG",
                         help="the catalogue server (see 'catalog import')")
    install.add_argument("--name", help="the installation's name (default: the server's name)")
    install.add_argument("--env", action=KeyValues, metavar="KEY=VALUE",
                         help="a team environment variable; repeat for more (the value may "
                         "contain '=')")
    install.add_argument("--arg", dest="args", action="append", metavar="VALUE",
                         help="a team argument, appended after the template's; repeat for "
                         "more, in order (a value starting with '-': --arg=-v)")
    install.add_argument("--header", dest="headers", action=KeyValues, metavar="KEY=VALUE",
                         help="a team HTTP header (http/sse servers); repeat for more")
    install.add_argument("--pin", metavar="SATELLITE_ID",
                         help="serve it only from this satellite (a global one, or one of "
                         "the team's own)")
    install.add_argument("--owner", metavar="EMAIL",
                         help="an existing user who owns it (their user config is merged "
                         "in); default: none")
    install.set_defaults(handler=commands.install)


def _add_command(subparsers: argparse._SubParsersAction[Parser]) -> None:
    command = _group(subparsers, "command", "satellite commands")
    send = command.add_parser(
        "send", help="enqueue a command; prints the command id",
        description="Enqueue a command for one satellite and print its id. A satellite "
        "holding a long poll receives it within 2 seconds.",
    )
    send.add_argument("--satellite", required=True, metavar="ID")
    send.add_argument("--type", required=True, type=enum_choice(CommandType),
                      metavar=_metavar(CommandType))
    send.add_argument("--priority", type=enum_choice(CommandPriority),
                      default=CommandPriority.NORMAL, metavar=_metavar(CommandPriority),
                      help="default: normal")
    send.add_argument("--payload", type=json_object, metavar="JSON",
                      help="a JSON object handed to the satellite")
    send.add_argument("--expires-in", type=int, metavar="SECONDS",
                      help="undelivered after this many seconds, the command expires "
                      "(1-86400; default: GROUNDSTATION_COMMAND_EXPIRY_SECONDS)")
    send.set_defaults(handler=commands.command_send)


def _add_satellites(subparsers: argparse._SubParsersAction[Parser]) -> None:
    listing = subparsers.add_parser(
        "satellites", help="list satellites",
        description="List satellites: id, name, satellite_type, team_id, status, online, "
        "last_heartbeat_at.",
    )
    listing.add_argument("--json", action="store_true", help="print one JSON array")
    listing.set_defaults(handler=commands.satellites_list)

    satellite = _group(subparsers, "satellite", "operator actions on one satellite")
    actions: list[tuple[str, str, commands.Handler]] = [
        ("disable", "disable: every request with its key gets 401; prints 'ok'",
         commands.satellite_disable),
        ("enable", "enable a disabled satellite again; prints 'ok'", commands.satellite_enable),
        ("delete", "delete: revoke its key, keep its history; prints 'ok'",
         commands.satellite_delete),
        ("rotate-key", "replace its API key; prints the new key (shown only once)",
         commands.satellite_rotate_key),
    ]
    for name, help_text, handler in actions:
        action = satellite.add_parser(name, help=help_text, description=help_text)
        action.add_argument("id", metavar="ID", help="the satellite id")
        action.set_defaults(handler=handler)


def build_parser() -> Parser:
    parser = Parser(
        prog=PROG,
        description="Groundstation: the control plane for DeployStack MCP satellites. "
        "Every command reads the same settings as the server (DATABASE_URL, SECRET_KEY, ...).",
    )
    subparsers = parser.add_subparsers(title="commands", dest="command", required=True,
                                       metavar="COMMAND", parser_class=Parser)
    _add_serve(subparsers)
    _add_admin(subparsers)
    _add_team(subparsers)
    _add_token(subparsers)
    _add_catalog(subparsers)
    _add_install(subparsers)
    _add_command(subparsers)
    _add_satellites(subparsers)
    return parser
