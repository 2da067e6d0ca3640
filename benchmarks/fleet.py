"""Preparing the benchmark fleet: registered, active satellites with their API keys."""

from __future__ import annotations

import json
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from app.config import Settings
from app.db import close_database, open_database
from app.models import SatelliteCommand
from app.models.enums import GlobalRole, SatelliteStatus, SatelliteType
from app.runtime import build_runtime
from app.services.common.actors import CLI_ACTOR
from app.services.mcp.catalog import get_server_by_slug, import_catalog
from app.services.mcp.installations import InstallationChange, install_server
from app.services.people.sessions import login
from app.services.people.teams import create_team
from app.services.people.users import create_user
from app.services.satellites.admin import create_satellite


@dataclass(frozen=True)
class BenchSatellite:
    id: str
    api_key: str

    @property
    def authorization(self) -> str:
        return f"Bearer {self.api_key}"


async def prepare_fleet(settings: Settings, count: int) -> list[BenchSatellite]:
    """Create `count` active global satellites through the services (before the server starts).

    The server loads them into memory at start-up; the warm-up then sends each one
    heartbeat over HTTP, as a real satellite would after registering.
    """
    await open_database(settings)
    try:
        rt = build_runtime(settings)
        fleet: list[BenchSatellite] = []
        for index in range(count):
            row, api_key = await create_satellite(
                rt, name=f"bench-satellite-{index:05d}", satellite_type=SatelliteType.GLOBAL,
                team_id=None,
            )
            await rt.fleet.apply_admin_change(row.id, "benchmark", status=SatelliteStatus.ACTIVE)
            fleet.append(BenchSatellite(row.id, api_key))
        return fleet
    finally:
        await close_database()


# What the reference client sends every 30 s (docs/protocol.md §13), with one process.
HEARTBEAT_BODY = json.dumps({
    "status": "active",
    "system_metrics": {
        "cpu_usage_percent": 12.5, "memory_usage_mb": 256, "disk_usage_percent": 0,
        "uptime_seconds": 3600,
    },
    "processes": [{
        "id": "http-proxy-bench-1700000000000", "server_name": "bench", "status": "running",
        "health_status": "healthy",
        "performance_metrics": {"total_requests": 10, "avg_response_time_ms": 12},
    }],
    "error_count": 0,
    "version": "0.1.0",
})


class DatabaseObserver:
    """Reads the server's SQLite file from outside: did anyone commit, how many rows."""

    def __init__(self, path: Path) -> None:
        self._connection = sqlite3.connect(path)

    def data_version(self) -> int:
        # Changes whenever another connection commits a change to the file.
        return int(self._connection.execute("PRAGMA data_version").fetchone()[0])

    def count(self, table: str) -> int:
        query = f"SELECT count(*) FROM {table}"  # noqa: S608 - fixed table names only
        return int(self._connection.execute(query).fetchone()[0])

    def close(self) -> None:
        self._connection.close()


@dataclass(frozen=True)
class BenchInstallation:
    id: str
    team_id: str


BENCH_CATALOG = {"servers": [{
    "slug": "bench-files", "name": "Bench files", "transport_type": "stdio", "command": "npx",
    "args": ["-y", "@modelcontextprotocol/server-filesystem"], "env": {"LOG_LEVEL": "info"},
    "team_env_schema": [{"name": "ROOT_DIR", "required": True},
                        {"name": "API_TOKEN", "secret": True}],
}]}


async def prepare_installation(settings: Settings) -> BenchInstallation:
    """One team with one MCP server installation that every benchmark satellite serves.

    Made through the services as an operator would (catalogue import, install with a
    secret), so config fetches render a real merged entry and open one secret. The
    installation is not pinned, so every (global) satellite may report events for it.
    """
    await open_database(settings)
    try:
        rt = build_runtime(settings)
        team = await create_team(rt, name="Bench team", slug="bench-team", admin_email=None,
                                 actor=CLI_ACTOR)
        await import_catalog(rt, BENCH_CATALOG, actor=CLI_ACTOR)
        server = await get_server_by_slug("bench-files")
        installation = await install_server(
            rt, team_id=team.id, server_id=server.id, actor=CLI_ACTOR,
            change=InstallationChange(name="files", env={"ROOT_DIR": "/srv",
                                                         "API_TOKEN": "bench-secret"}),
        )
        await SatelliteCommand.all().delete()  # the install's configure commands: polls stay idle
        return BenchInstallation(str(installation.id), str(team.id))
    finally:
        await close_database()


DASHBOARD_SATELLITES = 20
DASHBOARD_QUERY = (
    f"{{ satellites(first: {DASHBOARD_SATELLITES}) {{ totalCount edges {{ node {{ id name "
    "status online lastHeartbeatAt processCount team { id name } } } } }"
)
BENCH_ADMIN_EMAIL = "bench-admin@example.com"


async def prepare_session(settings: Settings) -> str:
    """A global admin's session token for the dashboard query (login as the UI does)."""
    await open_database(settings)
    try:
        rt = build_runtime(settings)
        password = secrets.token_urlsafe(16)
        await create_user(rt, email=BENCH_ADMIN_EMAIL, password=password,
                          global_role=GlobalRole.GLOBAL_ADMIN, actor=CLI_ACTOR)
        result = await login(rt, email=BENCH_ADMIN_EMAIL, password=password,
                             address="127.0.0.1")
        return result.token
    finally:
        await close_database()


EVENTS_PER_BATCH = 100


def events_body(installation: BenchInstallation) -> str:
    """A realistic 100-event batch: 90 tool executions, 5 log batches, 5 status changes.

    No client `id`s, so every POST stores 100 new events (server-generated keys)
    even though wrk sends the same body each time.
    """
    at = "2026-01-01T12:00:00.000Z"
    events: list[dict[str, object]] = []
    for index in range(EVENTS_PER_BATCH):
        kind = index % 20
        if kind == 7:
            events.append({"type": "mcp.server.logs", "timestamp": at, "data": {
                "installation_id": installation.id, "team_id": installation.team_id,
                "logs": [{"level": "info", "message": f"bench log line {index}-{line}",
                          "timestamp": at} for line in range(2)],
            }})
        elif kind == 15:
            events.append({"type": "mcp.server.status_changed", "timestamp": at, "data": {
                "installation_id": installation.id, "team_id": installation.team_id,
                "status": "online", "status_message": None, "timestamp": at,
            }})
        else:
            events.append({"type": "mcp.tool.executed", "timestamp": at, "data": {
                "tool_name": f"read_file_{index % 5}", "server_id": installation.id,
                "server_slug": "bench-files", "team_id": installation.team_id,
                "duration_ms": 12 + index, "success": index % 17 != 0,
                "error_message": None if index % 17 else "bench failure",
            }})
    return json.dumps({"events": events})
