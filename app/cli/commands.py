"""One small function per CLI command: call one service, return what stdout shows.

The rules live in the services; these functions only translate flags into
service arguments (the CLI acts as `CLI_ACTOR`, so tokens it issues have
`created_by` null) and results into the REST wire forms.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.cli.output import (
    SATELLITE_COLUMNS,
    TOKEN_COLUMNS,
    render_json,
    render_rows,
    satellite_row,
    token_row,
)
from app.errors import ValidationError
from app.models.enums import GlobalRole, SatelliteStatus
from app.runtime import Runtime
from app.services.commands.queue import enqueue_command
from app.services.common.actors import CLI_ACTOR
from app.services.mcp.catalog import get_server_by_slug, import_catalog
from app.services.mcp.installations import InstallationChange, install_server, missing_fields
from app.services.people.lookups import find_user
from app.services.people.principals import CLI_PRINCIPAL
from app.services.people.sessions import reset_password
from app.services.people.teams import create_team, get_team_by_slug
from app.services.people.users import create_user, get_user_by_email
from app.services.satellites.admin import (
    delete_satellite,
    list_satellites,
    rotate_satellite_key,
    set_satellite_status,
)
from app.services.satellites.tokens import (
    issue_registration_token,
    issue_registration_tokens,
    list_registration_tokens,
    revoke_registration_token,
)

OK = "ok"


@dataclass(frozen=True, slots=True)
class Invocation:
    """One command run: the runtime, the parsed flags, GROUNDSTATION_ADMIN_PASSWORD (read once)."""

    rt: Runtime
    args: argparse.Namespace
    admin_password_from_env: str | None = None


Handler = Callable[[Invocation], Awaitable[str]]


def _prompt_new_password() -> str:
    if not sys.stdin.isatty():
        raise ValidationError(
            "no password given: use --password, set GROUNDSTATION_ADMIN_PASSWORD, "
            "or run in a terminal to be prompted"
        )
    password = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != password:
        raise ValidationError("the passwords do not match")
    return password


async def _team_id(slug: str | None) -> str | None:
    return None if slug is None else (await get_team_by_slug(slug)).id


async def _new_password(call: Invocation) -> str:
    """--password, else GROUNDSTATION_ADMIN_PASSWORD, else a prompt (twice)."""
    password: str | None = call.args.password or call.admin_password_from_env
    if password:
        return password
    return await asyncio.to_thread(_prompt_new_password)


async def admin_create(call: Invocation) -> str:
    user = await create_user(
        call.rt, email=call.args.email, password=await _new_password(call),
        global_role=GlobalRole.GLOBAL_ADMIN, actor=CLI_ACTOR,
    )
    return user.id


async def user_reset_password(call: Invocation) -> str:
    user = await find_user(CLI_PRINCIPAL, call.args.user)
    ended = await reset_password(call.rt, user, new_password=await _new_password(call),
                                 actor=CLI_ACTOR)
    return f"password reset; {ended} session{'s' if ended != 1 else ''} ended"


async def team_create(call: Invocation) -> str:
    args = call.args
    team = await create_team(
        call.rt, name=args.name, slug=args.slug, admin_email=args.admin, actor=CLI_ACTOR
    )
    return team.id


async def token_create(call: Invocation) -> str:
    args = call.args
    team_id = await _team_id(args.team)
    if args.count == 1:
        issued = [await issue_registration_token(
            call.rt, scope=args.scope, team_id=team_id, hours=args.hours,
            satellite_name=args.name, actor=CLI_ACTOR,
        )]
    elif args.name is not None:
        raise ValidationError("--name binds one token to one satellite: not with --count")
    else:
        issued = await issue_registration_tokens(
            call.rt, count=args.count, scope=args.scope, team_id=team_id, hours=args.hours,
            actor=CLI_ACTOR,
        )
    if args.json:
        return render_json([{**token_row(token.row), "token": token.token} for token in issued])
    return "\n".join(token.token for token in issued)


async def token_list(call: Invocation) -> str:
    tokens = await list_registration_tokens(team_id=await _team_id(call.args.team))
    return render_rows([token_row(token) for token in tokens], TOKEN_COLUMNS,
                       as_json=call.args.json)


async def token_revoke(call: Invocation) -> str:
    await revoke_registration_token(call.rt, call.args.id, actor=CLI_ACTOR)
    return "revoked"


def _read_catalog_file(path: str) -> dict[str, Any]:
    """The parsed JSON object of a catalog file; file and JSON errors as one-line messages."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ValidationError(f"cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise ValidationError(f"{path} is not UTF-8 text") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValidationError(
            f"{path} is not valid JSON ({error.msg} at line {error.lineno} column {error.colno})"
        ) from None
    if not isinstance(document, dict):
        raise ValidationError(f'{path}: the top level must be an object {{"servers": [...]}}')
    return document


async def catalog_import(call: Invocation) -> str:
    document = await asyncio.to_thread(_read_catalog_file, call.args.file)
    imported = await import_catalog(call.rt, document, actor=CLI_ACTOR)
    return str(imported.imported)


async def install(call: Invocation) -> str:
    args = call.args
    team = await get_team_by_slug(args.team)
    server = await get_server_by_slug(args.server)
    owner = None if args.owner is None else (await get_user_by_email(args.owner)).id
    installation = await install_server(
        call.rt, team_id=team.id, server_id=server.id, actor=CLI_ACTOR,
        change=InstallationChange(name=args.name, env=args.env, args=args.args,
                                  headers=args.headers, pinned_satellite_id=args.pin,
                                  owner_id=owner),
    )
    missing = await missing_fields(installation)
    if missing:  # created, but left out of every config until set: say why, on stderr
        print(f"warning: installation is {installation.status}: {'; '.join(missing)}",
              file=sys.stderr, flush=True)
    return installation.id


async def command_send(call: Invocation) -> str:
    args = call.args
    command = await enqueue_command(
        call.rt, satellite_id=args.satellite, command_type=args.type, priority=args.priority,
        payload=args.payload, expires_in_seconds=args.expires_in, actor=CLI_ACTOR,
    )
    return command.id


async def satellites_list(call: Invocation) -> str:
    satellites = await list_satellites()
    return render_rows([satellite_row(satellite) for satellite in satellites],
                       SATELLITE_COLUMNS, as_json=call.args.json)


async def satellite_disable(call: Invocation) -> str:
    await set_satellite_status(call.rt, call.args.id, SatelliteStatus.DISABLED, actor=CLI_ACTOR)
    return OK


async def satellite_enable(call: Invocation) -> str:
    await set_satellite_status(call.rt, call.args.id, SatelliteStatus.ACTIVE, actor=CLI_ACTOR)
    return OK


async def satellite_delete(call: Invocation) -> str:
    await delete_satellite(call.rt, call.args.id, actor=CLI_ACTOR)
    return OK


async def satellite_rotate_key(call: Invocation) -> str:
    return await rotate_satellite_key(call.rt, call.args.id, actor=CLI_ACTOR)
