"""The argument tree of docs/operations.md §3. Each leaf names the function that runs it."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from app.cli import commands
from app.cli.arguments import (
    PROG,
    KeyValues,
    Parser,
    Subparsers,
    add_password_flag,
    enum_choice,
    group,
    json_object,
    metavar,
)
from app.cli.database import Access
from app.cli.demo import add_demo
from app.cli.parser_operations import add_operations
from app.cli.parser_reads import Groups, add_reads
from app.cli.serve import serve_command
from app.cli.simulate import add_simulate
from app.models.enums import CommandPriority, CommandType, TokenScope
from app.version import VERSION


def _add_serve(subparsers: argparse._SubParsersAction[Parser]) -> None:
    serve = subparsers.add_parser(
        "serve", help="migrate the database, then serve the API",
        description="Migrate the database (creating it, and the default data directory, "
        "when missing), then serve the satellite API. Prints the URL at start; logs (JSON) "
        "go to stderr. Stops gracefully on SIGINT/SIGTERM.",
    )
    serve.add_argument("--host", help="address to listen on (default: GROUNDSTATION_HOST, "
                       "else 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: GROUNDSTATION_PORT, else 3000)")
    serve.add_argument("--no-migrate", action="store_true",
                       help="do not migrate: refuse to start unless the database exists and "
                       "is up to date (for deployments that run 'groundstation migrate' "
                       "first)")
    serve.set_defaults(standalone=serve_command)


def _add_admin(subparsers: argparse._SubParsersAction[Parser]) -> None:
    admin = group(subparsers, "admin", "administrator accounts")
    create = admin.add_parser(
        "create", help="create a global_admin user; prints the user id",
        description="Create a global_admin user and print its id. The password comes from "
        "--password, else GROUNDSTATION_ADMIN_PASSWORD, else a prompt. Creates (and "
        "migrates) the database when it does not exist yet.",
    )
    create.add_argument("--email", required=True)
    add_password_flag(create)
    create.set_defaults(handler=commands.admin_create, access=Access.CREATE)


def _add_team(subparsers: argparse._SubParsersAction[Parser]) -> Subparsers:
    team = group(subparsers, "team", "teams")
    create = team.add_parser(
        "create", help="create a team; prints the team id",
        description="Create a team, optionally with an existing user as its team_admin. "
        "Prints the team id.",
    )
    create.add_argument("--name", required=True)
    create.add_argument("--slug", required=True)
    create.add_argument("--admin", metavar="EMAIL", help="an existing user to make team_admin")
    create.set_defaults(handler=commands.team_create)
    return team


def _add_token(subparsers: argparse._SubParsersAction[Parser]) -> None:
    token = group(subparsers, "token", "satellite registration tokens")
    create = token.add_parser(
        "create", help="issue registration tokens; prints each token alone on its line",
        description="Issue a single-use registration token and print it (shown only once). "
        "--name binds it to one satellite name: needed to re-register a live satellite. "
        "--count N issues N tokens at once for provisioning a fleet (one per line, audited "
        "as one action; not with --name).",
    )
    create.add_argument("--scope", required=True, type=enum_choice(TokenScope),
                        metavar=metavar(TokenScope))
    create.add_argument("--team", metavar="SLUG", help="the team (required for --scope team)")
    create.add_argument("--hours", type=int, help="lifetime in hours (global 1-24, default 1; "
                        "team 1-72, default 24)")
    create.add_argument("--name", metavar="SATELLITE_NAME",
                        help="bind the token to this satellite name")
    create.add_argument("--count", type=int, default=1, metavar="N",
                        help="how many tokens to issue (1-10000, default 1)")
    create.add_argument("--json", action="store_true",
                        help="print one JSON array of {id, token, scope, team_id, expires_at}")
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


def _add_catalog(subparsers: argparse._SubParsersAction[Parser]) -> Subparsers:
    catalog = group(subparsers, "catalog", "the MCP server catalogue")
    load = catalog.add_parser(
        "import", help="create or update MCP server templates from a JSON file; prints the "
        "number imported",
        description="Create or update MCP server templates, by slug, from a JSON catalog file "
        '({"servers": [...]}, docs/catalog.md) and print the number imported. The whole '
        "file is checked first: if any server is invalid, nothing is imported.",
    )
    load.add_argument("file", metavar="FILE", help="the catalog file (JSON)")
    load.set_defaults(handler=commands.catalog_import)
    return catalog


def _add_install(subparsers: argparse._SubParsersAction[Parser]) -> Subparsers:
    install = subparsers.add_parser(
        "install", help="install a catalogue MCP server for a team; prints the installation id",
        description="Install a catalogue MCP server for a team (its team-level values), "
        "enqueue a 'configure' command for every satellite that serves it, and print the "
        "installation id. Values are checked against the server's team schemas; values of "
        "secret fields are stored encrypted. An installation missing a required field is "
        "created as 'awaiting_config' and left out of satellite configs until set.",
    )
    install.add_argument("--team", metavar="SLUG", help="the team (required)")
    install.add_argument("--server", metavar="SLUG",
                         help="the catalogue server (see 'catalog import'; required)")
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
    install.set_defaults(handler=commands.install, required_flags=("team", "server"),
                         usage_parser=install)
    return install.add_subparsers(title="reading installations", dest="install_command",
                                  metavar="COMMAND")


def _add_command(subparsers: argparse._SubParsersAction[Parser]) -> Subparsers:
    command = group(subparsers, "command", "satellite commands")
    send = command.add_parser(
        "send", help="enqueue a command; prints the command id",
        description="Enqueue a command for one satellite and print its id. A satellite "
        "holding a long poll receives it within 2 seconds.",
    )
    send.add_argument("--satellite", required=True, metavar="ID")
    send.add_argument("--type", required=True, type=enum_choice(CommandType),
                      metavar=metavar(CommandType))
    send.add_argument("--priority", type=enum_choice(CommandPriority),
                      default=CommandPriority.NORMAL, metavar=metavar(CommandPriority),
                      help="default: normal")
    send.add_argument("--payload", type=json_object, metavar="JSON",
                      help="a JSON object handed to the satellite")
    send.add_argument("--expires-in", type=int, metavar="SECONDS",
                      help="undelivered after this many seconds, the command expires "
                      "(1-86400; default: GROUNDSTATION_COMMAND_EXPIRY_SECONDS)")
    send.set_defaults(handler=commands.command_send)
    return command


def _add_satellites(subparsers: argparse._SubParsersAction[Parser]) -> Subparsers:
    listing = subparsers.add_parser(
        "satellites", help="list satellites",
        description="List satellites: id, name, satellite_type, team_id, status, online, "
        "last_heartbeat_at.",
    )
    listing.add_argument("--json", action="store_true", help="print one JSON array")
    listing.set_defaults(handler=commands.satellites_list)

    satellite = group(subparsers, "satellite", "operator actions on one satellite")
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
    return satellite


def build_parser() -> Parser:
    parser = Parser(
        prog=PROG,
        description="Groundstation: the control plane for DeployStack MCP satellites. "
        "Every command reads the same settings as the server (DATABASE_URL, SECRET_KEY, ...).",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {VERSION}",
                        help="print the version and exit")
    parser.add_argument("--verbose", action="store_true",
                        help="say on stderr which database (without its password) and which "
                        "data directory the command uses")
    parser.set_defaults(handler=None, access=Access.EXISTING, standalone=None,
                        required_flags=())
    subparsers = parser.add_subparsers(title="commands", dest="command", required=True,
                                       metavar="COMMAND", parser_class=Parser)
    _add_serve(subparsers)
    add_operations(subparsers)
    add_simulate(subparsers)
    add_demo(subparsers)
    _add_admin(subparsers)
    team = _add_team(subparsers)
    _add_token(subparsers)
    catalog = _add_catalog(subparsers)
    install = _add_install(subparsers)
    command = _add_command(subparsers)
    satellite = _add_satellites(subparsers)
    add_reads(subparsers, Groups(team=team, catalog=catalog, install=install, command=command,
                                 satellite=satellite))
    return parser


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse `argv`; a flag that only some forms of a command need (`install --team`) is
    checked here, as a usage error like argparse's own."""
    args = build_parser().parse_args(argv)
    missing = [f"--{flag}" for flag in args.required_flags if getattr(args, flag) is None]
    if missing:
        args.usage_parser.error(f"the following arguments are required: {', '.join(missing)}")
    return args
