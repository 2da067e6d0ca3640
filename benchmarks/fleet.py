"""Preparing the benchmark fleet: registered, active satellites with their API keys."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from app.config import Settings
from app.db import close_database, open_database
from app.models.enums import SatelliteStatus, SatelliteType
from app.services.runtime import build_runtime
from app.services.satellites import create_satellite


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


# What the reference client sends every 30 s (protocol.md §13), with one process.
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
