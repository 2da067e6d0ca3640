"""`groundstation demo`: a throw-away server with people, teams, a catalogue,
installations and a simulated fleet, to look around (docs/operations.md §13).

Everything lives in a temporary directory (a SQLite file and its key) that is removed
when the demo stops (Ctrl-C), unless `--keep`. The fleet is `groundstation simulate`'s
engine, in the server's own process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import shutil
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp
from aiohttp import web

from app.cli.arguments import Parser
from app.config import Settings, resolve_secret_key, settings_from_mapping
from app.db import close_database, open_database
from app.logs import configure_logging
from app.main import create_app
from app.models.enums import GlobalRole, TeamRole, TokenScope
from app.runtime import build_runtime
from app.services.common.actors import CLI_ACTOR
from app.services.mcp.catalog import get_server_by_slug, import_catalog
from app.services.mcp.installations import InstallationChange, install_server
from app.services.people.teams import add_team_member, create_team
from app.services.people.users import create_user
from app.services.satellites.tokens import issue_registration_tokens
from app.simulator.engine import Fleet, Options

ADMIN_EMAIL = "admin@demo.example"
TEAMS = (("Acme", "acme"), ("Globex", "globex"))
SLUGS = ("filesystem", "time")
CATALOG = {"servers": [
    {"slug": "filesystem", "name": "Filesystem", "transport_type": "stdio",
     "command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/data"],
     "description": "Files under /data"},
    {"slug": "time", "name": "Time", "transport_type": "stdio", "command": "uvx",
     "args": ["mcp-server-time"], "description": "The time in any zone"},
]}


@dataclass(frozen=True, slots=True)
class Demo:
    settings: Settings
    directory: Path
    password: str
    tokens: tuple[str, ...]


def add_demo(subparsers: argparse._SubParsersAction[Parser]) -> None:
    demo = subparsers.add_parser(
        "demo", help="a throw-away server with a simulated fleet, to look around",
        description="Start a server on a new SQLite database in a temporary directory, with "
        f"an administrator ({ADMIN_EMAIL}, a new password printed at start), two teams "
        "each with an administrator, a small catalogue, installations, and a simulated fleet "
        "of global and team satellites (heartbeats, events, command results and some "
        "faults). Prints the URL and the sign-in; Ctrl-C stops it and removes the "
        "directory (unless --keep).")
    demo.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    demo.add_argument("--port", type=int, default=3000, help="port (default 3000; 0: any)")
    demo.add_argument("--satellites", type=int, default=12,
                      help="simulated satellites (default 12)")
    demo.add_argument("--keep", action="store_true",
                      help="keep the temporary directory (its path is printed)")
    demo.set_defaults(standalone=demo_command)


def demo_command(args: argparse.Namespace) -> int:
    if not 1 <= args.satellites <= 1000:
        print("error: --satellites must be between 1 and 1000", file=sys.stderr)
        return 2
    directory = Path(tempfile.mkdtemp(prefix="groundstation-demo-"))
    try:
        demo = asyncio.run(_prepare(directory, args.satellites))
        return _serve(demo, args.host, args.port, args.satellites)
    finally:
        if args.keep:
            print(f"kept: {directory}", file=sys.stderr)
        else:
            shutil.rmtree(directory, ignore_errors=True)


async def _prepare(directory: Path, satellites: int) -> Demo:
    settings = resolve_secret_key(replace(
        settings_from_mapping({"DATABASE_URL": f"sqlite://{directory / 'demo.db'}"}),
        data_dir=str(directory), log_level="WARNING"))
    password = secrets.token_urlsafe(12)
    await open_database(settings, migrate=True)
    try:
        rt = build_runtime(settings)
        await create_user(rt, email=ADMIN_EMAIL, password=password,
                          global_role=GlobalRole.GLOBAL_ADMIN, actor=CLI_ACTOR)
        await import_catalog(rt, CATALOG, actor=CLI_ACTOR)
        servers = [await get_server_by_slug(slug) for slug in SLUGS]
        tokens = [issued.token for issued in await issue_registration_tokens(
            rt, count=(satellites + 1) // 2, scope=TokenScope.GLOBAL, team_id=None, hours=24,
            actor=CLI_ACTOR)]
        for number, (name, slug) in enumerate(TEAMS):
            team = await create_team(rt, name=name, slug=slug, admin_email=None,
                                     actor=CLI_ACTOR)
            admin = await create_user(rt, email=f"{slug}-admin@demo.example",
                                      password=password, global_role=GlobalRole.GLOBAL_USER,
                                      actor=CLI_ACTOR)
            await add_team_member(rt, team.id, user_id=admin.id, role=TeamRole.TEAM_ADMIN,
                                  actor=CLI_ACTOR)
            for server in servers:
                if server is not None:
                    await install_server(rt, team_id=team.id, server_id=server.id,
                                         change=InstallationChange(), actor=CLI_ACTOR)
            share = satellites // 2 // len(TEAMS) + (
                1 if number < satellites // 2 % len(TEAMS) else 0)
            if share:
                tokens += [issued.token for issued in await issue_registration_tokens(
                    rt, count=share, scope=TokenScope.TEAM, team_id=team.id, hours=24,
                    actor=CLI_ACTOR)]
    finally:
        await close_database()
    return Demo(settings, directory, password, tuple(tokens))


def _serve(demo: Demo, host: str, port: int, satellites: int) -> int:
    configure_logging(demo.settings.log_level)
    app = create_app(demo.settings, build_runtime(demo.settings), migrate=False)
    fleet_task: list[asyncio.Task[object]] = []

    def announce(message: str) -> None:
        url = message.split("Running on ", 1)[-1].split(" ", 1)[0] if "Running on" in message \
            else f"http://{host}:{port}"
        print(f"Groundstation demo: {url}", flush=True)
        print(f"sign in as {ADMIN_EMAIL} (or acme-admin@demo.example, "
              f"globex-admin@demo.example) with password {demo.password}", flush=True)
        print(f"data: {demo.directory} (Ctrl-C stops the demo and removes it)", flush=True)
        fleet_task.append(asyncio.get_event_loop().create_task(
            _fly(url, demo.tokens, satellites)))

    async def land(_app: web.Application) -> None:
        for task in fleet_task:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    app.on_shutdown.insert(0, land)
    web.run_app(app, host=host, port=port, print=announce,
                shutdown_timeout=demo.settings.shutdown_timeout_seconds)
    return 0


async def _fly(url: str, tokens: tuple[str, ...], satellites: int) -> None:
    """The simulated fleet, once the server answers."""
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"{url}/api/health") as response:
                    if response.status == 200:
                        break
            await asyncio.sleep(0.1)
    await Fleet(Options(url=url, satellites=satellites, duration=365 * 86400.0,
                        tokens=tokens, events_per_second=2.0,
                        faults=frozenset({"crash", "flap", "slow"}),
                        progress_seconds=3600.0)).run()


__all__ = ["add_demo", "demo_command"]
