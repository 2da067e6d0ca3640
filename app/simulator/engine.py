"""The simulated fleet: N satellites in one asyncio process over one HTTP session.

Each satellite does what the reference satellite does (docs/protocol.md §13):
registers with a registration token (or starts from saved credentials),
heartbeats at the interval the server answers (±10 % jitter, phases spread
over the first interval), polls for commands (long polls by default, else at
the server's `next_poll_interval`), runs each command and reports its result,
fetches its configuration with `If-None-Match` on `configure`, sends event
batches every 3 s when it has events, and registers again when its key is
refused and it has a token left. 429 and 503 answers are retried after their
`Retry-After` and counted as throttled, not as errors.

One task per satellite for its heartbeats and one for its polls; events come
from one fleet-wide task, so 10,000 satellites cost about 700 wake-ups a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp

from app.gc_tuning import tune_for_long_lived_heap
from app.simulator.stats import Stats
from app.version import VERSION

USER_AGENT = f"groundstation-simulator/{VERSION}"
LONG_POLL_SECONDS = 25
EVENT_BATCH_SECONDS = 3.0
MAX_EVENTS_PER_BATCH = 100
DEFAULT_HEARTBEAT_SECONDS = 30.0
FAULT_SHARE = 0.05
KEEPALIVE_SECONDS = 20.0
_THROTTLED = (429, 503)


@dataclass(frozen=True)
class Options:
    url: str
    satellites: int
    duration: float
    tokens: tuple[str, ...] = ()
    credentials: tuple[tuple[str, str], ...] = ()
    events_per_second: float = 20.0
    long_poll: bool = True
    faults: frozenset[str] = frozenset()
    seed: int = 1
    register_concurrency: int = 64
    progress_seconds: float = 5.0
    # Process-wide garbage-collector settings for a big heap (`app.gc_tuning`): for a
    # process of its own, not for a library caller.
    tune_gc: bool = False
    # Called with (satellite id, command id, time.monotonic()) when a poll delivers.
    on_command: Callable[[str, str, float], None] | None = None


@dataclass
class _Entry:
    """One installation the satellite's config lists: what its process and events name."""

    process_id: str
    installation_id: str
    team_id: str
    server_slug: str


@dataclass
class SimulatedSatellite:
    index: int
    name: str
    rng: random.Random
    satellite_id: str | None = None
    api_key: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    entries: list[_Entry] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    online: bool = False
    crashes: bool = False
    flaps: bool = False
    slow: bool = False
    silent_until: float = 0.0
    crash_count: int = 0
    cpu: float = 10.0
    requests_total: int = 0
    started: float = field(default_factory=time.monotonic)

    def authorize(self, satellite_id: str, api_key: str) -> None:
        self.satellite_id, self.api_key = satellite_id, api_key
        self.headers = {"Authorization": f"Bearer {api_key}",
                        "Content-Type": "application/json", "User-Agent": USER_AGENT}

    def path(self, suffix: str) -> str:
        return f"/api/satellites/{self.satellite_id}/{suffix}"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Fleet:
    """Runs the simulation; `run()` returns the summary (also when cancelled)."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.stats = Stats()
        rng = random.Random(options.seed)  # noqa: S311 - a simulation, not a secret
        self._tokens = list(options.tokens)
        self.satellites: list[SimulatedSatellite] = []
        for index in range(options.satellites):
            satellite = SimulatedSatellite(index, f"sim-{options.seed}-{index:05d}",
                                           random.Random(rng.random()))  # noqa: S311
            satellite.crashes = "crash" in options.faults and rng.random() < FAULT_SHARE
            satellite.flaps = "flap" in options.faults and rng.random() < FAULT_SHARE
            satellite.slow = "slow" in options.faults and rng.random() < FAULT_SHARE
            if index < len(options.credentials):
                satellite.authorize(*options.credentials[index])
            self.satellites.append(satellite)
        self._register_gate = asyncio.Semaphore(options.register_concurrency)
        self._interval = DEFAULT_HEARTBEAT_SECONDS
        self._session: aiohttp.ClientSession | None = None
        self._started = time.monotonic()
        self.all_online_after: float | None = None
        self._waiting_to_come_online = options.satellites
        # What bring-up cost (until every satellite was online), apart from the rest.
        self.bring_up: Stats | None = None
        self._steady_started: float | None = None
        self._stopping = asyncio.Event()
        self._sending: set[asyncio.Task[None]] = set()

    # ---- running ------------------------------------------------------------------
    async def run(self) -> dict[str, Any]:
        raise_file_limit(self.options.satellites * 2 + 100)
        if self.options.tune_gc:
            tune_for_long_lived_heap()  # the client's own pauses would count as latency
        # Idle connections are closed well before a server would (aiohttp's closes after
        # 75 s), so no request is ever sent on a connection the server is closing.
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=KEEPALIVE_SECONDS)
        timeout = aiohttp.ClientTimeout(total=LONG_POLL_SECONDS + 20)
        self._started = time.monotonic()
        async with aiohttp.ClientSession(self.options.url, connector=connector,
                                         timeout=timeout) as session:
            self._session = session
            tasks = [asyncio.create_task(self._life(satellite)) for satellite in self.satellites]
            tasks.append(asyncio.create_task(self._event_source()))
            tasks.append(asyncio.create_task(self._progress()))
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=self.options.duration)
            except TimeoutError:
                pass
            finally:
                self._stopping.set()
                for task in [*tasks, *self._sending]:
                    task.cancel()
                await asyncio.gather(*tasks, *self._sending, return_exceptions=True)
        return self.summary()

    def stop(self) -> None:
        self._stopping.set()

    def summary(self) -> dict[str, Any]:
        """The run after bring-up (or the whole run, if not every satellite came online),
        with bring-up's own numbers under `bring_up`."""
        now = time.monotonic()
        started = self._steady_started or self._started
        bring_up = None
        if self.bring_up is not None and self.all_online_after is not None:
            bring_up = _stats_summary(self.bring_up, self.all_online_after)
        return {
            "satellites": self.options.satellites,
            "registered": sum(1 for s in self.satellites if s.satellite_id),
            "online": sum(1 for s in self.satellites if s.online),
            "all_online_after_seconds": None if self.all_online_after is None
            else round(self.all_online_after, 1),
            "duration_seconds": round(now - self._started, 1),
            "steady_seconds": round(now - started, 1),
            **_stats_summary(self.stats, max(1e-9, now - started)),
            "bring_up": bring_up,
        }

    def progress_line(self) -> str:
        elapsed = time.monotonic() - self._started
        summary = self.summary()
        routes = " ".join(
            f"{name} {route['p50_ms']:.0f}/{route['p99_ms']:.0f}ms"
            for name, route in summary["routes"].items() if route["requests"])
        return (f"[simulate] {elapsed:5.0f}s registered {summary['registered']:,} online "
                f"{summary['online']:,} | {summary['requests_per_second']:,.0f} req/s | "
                f"{routes} (p50/p99) | errors {summary['errors']} throttled "
                f"{summary['throttled']}")

    async def _progress(self) -> None:
        while True:
            await asyncio.sleep(self.options.progress_seconds)
            print(self.progress_line(), file=sys.stderr, flush=True)

    # ---- one satellite ------------------------------------------------------------
    async def _life(self, satellite: SimulatedSatellite) -> None:
        if satellite.satellite_id is None:
            async with self._register_gate:
                if not await self._register(satellite):
                    return
        else:  # saved credentials: start within one interval, as a fleet that was running
            await asyncio.sleep(satellite.rng.uniform(0, min(10.0, self._interval)))
        await self._heartbeat(satellite)
        await self._fetch_config(satellite)
        self._note_online(satellite)
        poller = asyncio.create_task(self._polls(satellite))
        try:
            # The steady phase starts at a random point of the interval.
            await asyncio.sleep(satellite.rng.uniform(0, self._interval))
            while True:
                await self._maybe_flap(satellite)
                await self._heartbeat(satellite)
                await asyncio.sleep(self._interval * satellite.rng.uniform(0.9, 1.1))
        finally:
            poller.cancel()

    def _note_online(self, satellite: SimulatedSatellite) -> None:
        satellite.online = True
        if self.all_online_after is None:
            self._waiting_to_come_online -= 1
            if self._waiting_to_come_online == 0:
                # Bring-up ends: its requests are summarised apart from the steady run.
                now = time.monotonic()
                self.all_online_after = now - self._started
                self.bring_up, self.stats = self.stats, Stats()
                self._steady_started = now

    async def _maybe_flap(self, satellite: SimulatedSatellite) -> None:
        """A flapping satellite goes silent for 2–3 minutes now and then, then comes back."""
        if not satellite.flaps or satellite.rng.random() > 0.1:
            return
        silence = satellite.rng.uniform(120, 180)
        satellite.silent_until = time.monotonic() + silence
        satellite.online = False
        await asyncio.sleep(silence)
        satellite.online = True

    async def _call(self, satellite: SimulatedSatellite, route: str, method: str, path: str,
                    *, body: Any = None, headers: dict[str, str] | None = None,
                    params: dict[str, str] | None = None) -> tuple[int, bytes, Any]:
        """One request, retried after `Retry-After` while throttled; (status, body, headers).
        Status 0: a transport failure (counted, not retried)."""
        assert self._session is not None
        stats = self.stats.routes[route]
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        while True:
            started = time.monotonic()
            try:
                async with self._session.request(method, path, data=data,
                                                 headers=headers or satellite.headers,
                                                 params=params) as response:
                    payload = await response.read()
                    status = response.status
                    answer_headers = response.headers
            except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as error:
                # Refused or dropped connections: a server that is down or restarting.
                # The reference satellite retries these; counted apart from errors.
                if not self._stopping.is_set():
                    self.stats.unreachable += 1
                    self.stats.note_unreachable(f"{route}: {type(error).__name__}")
                return 0, b"", {}
            except (aiohttp.ClientError, TimeoutError) as error:
                if self._stopping.is_set():
                    return 0, b"", {}  # the run is ending: not the server's failure
                self.stats.transport_errors += 1
                self.stats.note_error(f"{route}: {type(error).__name__}")
                return 0, b"", {}
            stats.requests += 1
            stats.latency.record(time.monotonic() - started)
            if status in _THROTTLED and "Retry-After" in answer_headers:
                stats.throttled += 1
                await asyncio.sleep(_retry_after(answer_headers["Retry-After"], satellite.rng))
                continue
            if status >= 400 and not (route == "register" and status == 409):
                stats.errors += 1
                self.stats.note_error(f"{route}: {status} {payload[:120]!r}")
            return status, payload, answer_headers

    async def _register(self, satellite: SimulatedSatellite) -> bool:
        if not self._tokens:
            self.stats.note_error("register: no registration token left")
            return False
        token = self._tokens.pop()
        body = {"name": satellite.name, "capabilities": ["stdio", "http", "sse"],
                "system_info": {"os": "linux", "arch": "x64", "node_version": "v20.11.1",
                                "memory_mb": 2048}}
        status, payload, _ = await self._call(
            satellite, "register", "POST", "/api/satellites/register", body=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                     "User-Agent": USER_AGENT})
        if status != 200:
            return False
        answer = json.loads(payload)["satellite"]
        satellite.authorize(answer["id"], answer["api_key"])
        return True

    async def _refused(self, satellite: SimulatedSatellite) -> bool:
        """Key refused (401): register again when a token is left (docs/protocol.md §4)."""
        satellite.online = False
        async with self._register_gate:
            registered = await self._register(satellite)
        satellite.online = registered
        return registered

    def _heartbeat_body(self, satellite: SimulatedSatellite) -> dict[str, Any]:
        rng = satellite.rng
        satellite.cpu = min(90.0, max(2.0, satellite.cpu + rng.uniform(-5, 5)))
        failing = satellite.crashes and rng.random() < 0.3
        processes = [{
            "id": entry.process_id, "server_name": entry.server_slug,
            "status": "failed" if failing else "running",
            "health_status": "unhealthy" if failing else "healthy",
            "performance_metrics": {"total_requests": satellite.requests_total,
                                    "avg_response_time_ms": round(rng.uniform(5, 80), 1)},
        } for entry in satellite.entries]
        return {
            "status": "degraded" if failing else "active",
            "system_metrics": {
                "cpu_usage_percent": round(satellite.cpu, 1),
                "memory_usage_mb": round(256 + 32 * rng.random(), 1),
                "disk_usage_percent": round(40 + rng.random(), 1),
                "uptime_seconds": int(time.monotonic() - satellite.started),
            },
            "processes": processes,
            "error_count": satellite.crash_count,
            "version": VERSION,
        }

    async def _heartbeat(self, satellite: SimulatedSatellite) -> None:
        status, payload, _ = await self._call(satellite, "heartbeat", "POST",
                                              satellite.path("heartbeat"),
                                              body=self._heartbeat_body(satellite))
        if status == 401:
            await self._refused(satellite)
        elif status == 200:
            interval = json.loads(payload).get("heartbeat_interval")
            if isinstance(interval, int | float) and interval > 0:
                self._interval = float(interval)

    async def _fetch_config(self, satellite: SimulatedSatellite) -> None:
        headers = satellite.headers
        if satellite.etag:
            headers = {**headers, "If-None-Match": satellite.etag}
        status, payload, answer_headers = await self._call(
            satellite, "config", "GET", satellite.path("config"), headers=headers)
        if status != 200:
            return
        satellite.etag = answer_headers.get("ETag")
        servers = json.loads(payload).get("mcp_servers") or {}
        satellite.entries = [
            _Entry(process_id, str(entry.get("installation_id")), str(entry.get("team_id")),
                   str(entry.get("server_slug")))
            for process_id, entry in servers.items() if isinstance(entry, dict)
        ]

    async def _polls(self, satellite: SimulatedSatellite) -> None:
        params = {"limit": "10"}
        if self.options.long_poll:
            params["wait"] = str(LONG_POLL_SECONDS)
        while True:
            if satellite.silent_until > time.monotonic():
                await asyncio.sleep(satellite.silent_until - time.monotonic())
            sent = time.monotonic()
            status, payload, _ = await self._call(satellite, "poll", "GET",
                                                  satellite.path("commands"), params=params)
            if status == 0:
                await asyncio.sleep(satellite.rng.uniform(1, 5))  # retry, as the reference
                continue
            if status == 401:
                if not await self._refused(satellite):
                    return  # no token left: this satellite stops polling
                continue
            if status != 200:
                await asyncio.sleep(5)
                continue
            answered_after = time.monotonic() - sent
            answer = json.loads(payload)
            commands = answer.get("commands") or []
            received = time.monotonic()
            for command in commands:
                self.stats.commands_received += 1
                if self.options.on_command is not None and satellite.satellite_id:
                    self.options.on_command(satellite.satellite_id, str(command["id"]), received)
            for command in commands:
                await self._execute(satellite, command)
            if not self.options.long_poll:
                await asyncio.sleep(float(answer.get("next_poll_interval") or 30))
            elif not commands and answered_after < 1.0:
                # An empty answer that was not held (the server is stopping, or the
                # satellite is not active): not again at once.
                await asyncio.sleep(satellite.rng.uniform(1, 3))

    async def _execute(self, satellite: SimulatedSatellite, command: dict[str, Any]) -> None:
        kind = command.get("command_type")
        if satellite.slow:
            await asyncio.sleep(satellite.rng.uniform(5, 20))
        ok = True
        if kind == "configure":
            await self._fetch_config(satellite)
        elif kind in ("spawn", "restart"):
            ok = not satellite.crashes
            for entry in satellite.entries:
                self._lifecycle_event(satellite, entry, crashed=not ok)
        body: dict[str, Any] = {"command_id": command["id"],
                                "status": "completed" if ok else "failed",
                                "result": {"simulated": True}}
        if not ok:
            body["error"] = "simulated crash"
        await self._call(satellite, "command-result", "POST", satellite.path("command-result"),
                         body=body)

    # ---- events -------------------------------------------------------------------
    def _lifecycle_event(self, satellite: SimulatedSatellite, entry: _Entry, *,
                         crashed: bool) -> None:
        common = {"server_id": entry.installation_id, "server_slug": entry.server_slug,
                  "team_id": entry.team_id}
        if crashed:
            satellite.crash_count += 1
            data = {**common, "process_id": satellite.rng.randint(1000, 60000), "exit_code": 1,
                    "signal": None, "uptime_seconds": satellite.rng.randint(1, 600),
                    "crash_count": satellite.crash_count, "will_restart": True}
            satellite.events.append({"type": "mcp.server.crashed", "timestamp": now_iso(),
                                     "data": data})
        else:
            data = {**common, "process_id": satellite.rng.randint(1000, 60000),
                    "transport": "stdio", "tool_count": 3, "spawn_duration_ms": 120}
            satellite.events.append({"type": "mcp.server.started", "timestamp": now_iso(),
                                     "data": data})

    def _activity_event(self, satellite: SimulatedSatellite) -> None:
        if not satellite.entries:
            return
        entry = satellite.rng.choice(satellite.entries)
        roll = satellite.rng.random()
        satellite.requests_total += 1
        if roll < 0.8:
            satellite.events.append({"type": "mcp.tool.executed", "timestamp": now_iso(),
                                     "data": {"tool_name": f"tool_{satellite.rng.randint(1, 5)}",
                                              "server_id": entry.installation_id,
                                              "server_slug": entry.server_slug,
                                              "team_id": entry.team_id,
                                              "duration_ms": satellite.rng.randint(3, 400),
                                              "success": satellite.rng.random() > 0.05}})
        elif roll < 0.9:
            satellite.events.append({"type": "mcp.server.logs", "timestamp": now_iso(), "data": {
                "installation_id": entry.installation_id, "team_id": entry.team_id,
                "logs": [{"level": "info", "message": "simulated log line",
                          "timestamp": now_iso()}]}})
        else:
            satellite.events.append({"type": "mcp.client.activity", "timestamp": now_iso(),
                                     "data": {"team_id": entry.team_id, "request_count": 3,
                                              "tool_call_count": 2,
                                              "last_activity_at": now_iso()}})
        if satellite.crashes and satellite.rng.random() < 0.2:
            self._lifecycle_event(satellite, entry, crashed=True)

    async def _event_source(self) -> None:
        """Every 3 s: make the fleet's share of events, send each satellite's batch."""
        carry = 0.0
        while True:
            await asyncio.sleep(EVENT_BATCH_SECONDS)
            carry += self.options.events_per_second * EVENT_BATCH_SECONDS
            ready = [s for s in self.satellites if s.online and s.satellite_id
                     and s.silent_until <= time.monotonic()]
            while carry >= 1 and ready:
                carry -= 1
                self._activity_event(random.choice(ready))  # noqa: S311 - not a secret
            if not ready:
                carry = 0.0
            for satellite in ready:
                if satellite.events:
                    batch = satellite.events[:MAX_EVENTS_PER_BATCH]
                    del satellite.events[:MAX_EVENTS_PER_BATCH]
                    sending = asyncio.create_task(self._send_events(satellite, batch))
                    self._sending.add(sending)
                    sending.add_done_callback(self._sending.discard)

    async def _send_events(self, satellite: SimulatedSatellite,
                           batch: list[dict[str, Any]]) -> None:
        status, payload, _ = await self._call(satellite, "events", "POST",
                                              satellite.path("events"), body={"events": batch})
        if status == 200:
            answer = json.loads(payload)
            self.stats.events_sent += int(answer.get("processed") or 0)
            failed = answer.get("failed") or 0
            self.stats.events_rejected += failed if isinstance(failed, int) else len(failed)


def _stats_summary(stats: Stats, elapsed: float) -> dict[str, Any]:
    return {
        "requests": stats.requests,
        "requests_per_second": round(stats.requests / elapsed, 1),
        "errors": stats.errors,
        "transport_errors": stats.transport_errors,
        "unreachable": stats.unreachable,
        "throttled": sum(route.throttled for route in stats.routes.values()),
        "commands_received": stats.commands_received,
        "events_sent": stats.events_sent,
        "events_rejected": stats.events_rejected,
        "routes": {name: route.summary(elapsed) for name, route in stats.routes.items()},
        "error_samples": stats.error_samples,
        "unreachable_samples": stats.unreachable_samples,
    }


def _retry_after(value: str, rng: random.Random) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = 1.0
    return max(0.1, seconds) * rng.uniform(1.0, 1.5)


def raise_file_limit(wanted: int) -> int:
    """Raise the soft open-file limit toward `wanted` (up to the hard limit); the new soft
    limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
    return soft


__all__ = ["Fleet", "Options", "SimulatedSatellite", "raise_file_limit"]
