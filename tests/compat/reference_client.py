"""A stand-in for the DeployStack satellite: exactly what docs/protocol.md §13 says it sends.

Headers, bodies, time-outs and reactions (discarding its key after any non-2xx
verification heartbeat) follow the reference client, so tests can check that an
unmodified satellite works against us.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp

CLIENT_VERSION = "0.1.0"


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class ReferenceSatellite:
    base_url: str
    name: str
    registration_token: str
    satellite_url: str | None = "http://satellite.internal:3001"
    satellite_id: str | None = None
    api_key: str | None = None
    log: list[str] = field(default_factory=list)
    started_ms: int = field(default_factory=lambda: int(time.time() * 1000))

    def _headers(self, bearer: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {bearer}",
            "Content-Type": "application/json",
            "User-Agent": f"DeployStack-Satellite/{CLIENT_VERSION} (Node.js)",
            "Accept": "application/json, text/plain, */*",
            "Accept-Language": "en-US,en;q=0.9",
            "Accept-Encoding": "gzip, deflate, br",
            "Cache-Control": "no-cache",
            "Connection": "keep-alive",
        }

    async def _call(
        self, session: aiohttp.ClientSession, method: str, path: str, *, bearer: str,
        body: Any = None, timeout: float = 10.0, params: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        async with session.request(
            method, f"{self.base_url}{path}", headers=self._headers(bearer), json=body,
            params=params, timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            text = await response.text()
            self.log.append(f"{method} {path} -> {response.status}")
            try:
                return response.status, (await response.json(content_type=None)) if text else None
            except ValueError:
                return response.status, text

    async def health(self, session: aiohttp.ClientSession) -> bool:
        async with session.get(
            f"{self.base_url}/api/health", timeout=aiohttp.ClientTimeout(total=5)
        ) as response:
            self.log.append(f"GET /api/health -> {response.status}")
            return 200 <= response.status < 300

    async def register(self, session: aiohttp.ClientSession) -> tuple[int, Any]:
        body = {
            "name": self.name,
            "capabilities": ["stdio", "http", "sse"],
            "system_info": {"os": "linux linux", "arch": "x64", "node_version": "v20.11.1",
                            "memory_mb": 2048},
        }
        if self.satellite_url:
            body["satellite_url"] = self.satellite_url
        status, answer = await self._call(
            session, "POST", "/api/satellites/register", bearer=self.registration_token,
            body=body,
        )
        if status == 200:
            self.satellite_id = answer["satellite"]["id"]
            self.api_key = answer["satellite"]["api_key"]
        return status, answer

    def heartbeat_body(self, *, version: str = CLIENT_VERSION, processes: bool = True,
                       satellite_url: str | None = None) -> dict[str, Any]:
        uptime = max(0, int(time.time() * 1000) - self.started_ms) // 1000
        body: dict[str, Any] = {
            "status": "active",
            "system_metrics": {"cpu_usage_percent": 0, "memory_usage_mb": 87.4,
                               "disk_usage_percent": 0, "uptime_seconds": uptime},
            "processes": [
                {"id": f"http-proxy-context7-{self.started_ms}", "server_name": "context7",
                 "status": "running", "health_status": "healthy",
                 "performance_metrics": {"total_requests": 3, "avg_response_time_ms": 41.5}},
            ] if processes else [],
            "error_count": 0,
            "version": version,
            "processes_by_team": {},
            "normalized_data": {"timestamp": _now_iso(), "satellite_info": {"name": self.name},
                                "summary": {}, "teams": [], "servers": [], "tools": []},
        }
        if satellite_url is not None:
            body["satellite_url"] = satellite_url
        return body

    async def heartbeat(self, session: aiohttp.ClientSession, **kwargs: Any) -> tuple[int, Any]:
        assert self.api_key
        assert self.satellite_id
        return await self._call(
            session, "POST", f"/api/satellites/{self.satellite_id}/heartbeat",
            bearer=self.api_key, body=self.heartbeat_body(**kwargs),
        )

    async def fetch_config(self, session: aiohttp.ClientSession) -> tuple[int, Any]:
        assert self.api_key
        assert self.satellite_id
        return await self._call(
            session, "GET", f"/api/satellites/{self.satellite_id}/config", bearer=self.api_key
        )

    async def poll(self, session: aiohttp.ClientSession) -> tuple[int, Any]:
        assert self.api_key
        assert self.satellite_id
        return await self._call(
            session, "GET", f"/api/satellites/{self.satellite_id}/commands",
            bearer=self.api_key, params={"last_poll": _now_iso(), "limit": "10"}, timeout=15,
        )

    async def report(self, session: aiohttp.ClientSession, command_id: str, *, ok: bool,
                     result: dict[str, Any] | None = None, error: str | None = None
                     ) -> tuple[int, Any]:
        assert self.api_key
        assert self.satellite_id
        body: dict[str, Any] = {"command_id": command_id,
                                "status": "completed" if ok else "failed"}
        if result is not None:
            body["result"] = result
        if error is not None:
            body["error"] = error
        return await self._call(
            session, "POST", f"/api/satellites/{self.satellite_id}/command-result",
            bearer=self.api_key, body=body,
        )

    async def send_events(self, session: aiohttp.ClientSession, events: list[dict[str, Any]]
                          ) -> tuple[int, Any]:
        """One `POST …/events` of a queued batch (at most 100 events, sent every 3 s)."""
        assert self.api_key
        assert self.satellite_id
        return await self._call(
            session, "POST", f"/api/satellites/{self.satellite_id}/events",
            bearer=self.api_key, body={"events": events},
        )

    async def start(self, session: aiohttp.ClientSession) -> None:
        """The client's start-up: health, verification (or registration), heartbeat, config."""
        if not await self.health(session):
            raise RuntimeError("backend health check failed: the client exits")
        if self.api_key and self.satellite_id:
            status, _ = await self.heartbeat(session, version="1.0.0", processes=False)
            if not 200 <= status < 300:
                self.api_key = None  # any non-2xx: discard the key, register again by name
        if not self.api_key:
            status, answer = await self.register(session)
            if status != 200:
                raise RuntimeError(f"registration failed: {status} {answer}")
        status, _ = await self.heartbeat(session, satellite_url=self.satellite_url or "")
        if status != 200:
            raise RuntimeError(f"first heartbeat failed: {status}")
        status, _ = await self.fetch_config(session)
        if status != 200:
            raise RuntimeError(f"config fetch failed: {status}")
