"""Load generators: `wrk` with a Lua script when installed, else an aiohttp client.

Both spread requests round-robin over many (path, API key) targets, so no one
satellite's limits shape the result, and both report the same `LoadResult`.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp

WRK_MARKER = "WRKJSON "


@dataclass(frozen=True)
class Target:
    path: str
    authorization: str | None = None
    if_none_match: str | None = None  # sent as `If-None-Match` (conditional GETs)


@dataclass(frozen=True)
class LoadResult:
    tool: str
    requests: int
    duration_seconds: float
    non_2xx: int
    socket_errors: int
    latency_p50_ms: float
    latency_p99_ms: float
    # CPU time the server process spent during the measurement (Linux), if known.
    server_cpu_seconds: float | None = None

    @property
    def server_cpu_us_per_request(self) -> float | None:
        """Server CPU per answered request: steadier than req/s on a busy machine."""
        ok = self.requests - self.non_2xx
        if self.server_cpu_seconds is None or ok <= 0:
            return None
        return self.server_cpu_seconds / ok * 1e6

    @property
    def requests_per_second(self) -> float:
        ok = self.requests - self.non_2xx
        return ok / self.duration_seconds if self.duration_seconds else 0.0

    def as_dict(self) -> dict[str, object]:
        per_request = self.server_cpu_us_per_request
        return {**asdict(self), "requests_per_second": round(self.requests_per_second, 1),
                "server_cpu_us_per_request": None if per_request is None
                else round(per_request, 1)}


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal here


def wrk_script(targets: list[Target], method: str, body: str | None) -> str:
    """A wrk script cycling over the targets; `done` prints one JSON line with the summary."""
    rows = ",\n".join(
        f"  {{{_lua_string(t.path)}, {_lua_string(t.authorization or '')}, "
        f"{_lua_string(t.if_none_match or '')}}}"
        for t in targets
    )
    body_literal = "nil" if body is None else _lua_string(body)
    return f"""
local targets = {{
{rows}
}}
local method = {_lua_string(method)}
local body = {body_literal}
local counter = 0
local threads_made = 0

function setup(thread)
  -- each thread starts at a different satellite
  threads_made = threads_made + 1
  thread:set("offset", threads_made * 7919)
end

function init(args)
  counter = (offset or 0) % #targets
end

function request()
  counter = counter % #targets + 1
  local target = targets[counter]
  local headers = {{["Content-Type"] = "application/json"}}
  if target[2] ~= "" then headers["Authorization"] = target[2] end
  if target[3] ~= "" then headers["If-None-Match"] = target[3] end
  return wrk.format(method, target[1], headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{WRK_MARKER}{{"requests":%d,"duration_us":%d,"status":%d,"socket":%d,' ..
    '"p50_us":%d,"p99_us":%d}}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def run_wrk(
    base_url: str, targets: list[Target], *, method: str, body: str | None,
    duration: float, connections: int, threads: int,
) -> LoadResult:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(wrk_script(targets, method, body))
        script = Path(handle.name)
    try:
        completed = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s",
             "--timeout", "10s", "-s", str(script), base_url],
            capture_output=True, text=True, check=True,
        )
    finally:
        script.unlink(missing_ok=True)
    line = next(
        (row for row in completed.stdout.splitlines() if row.startswith(WRK_MARKER)), None
    )
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{completed.stdout}\n{completed.stderr}")
    data = json.loads(line.removeprefix(WRK_MARKER))
    return LoadResult(
        tool="wrk",
        requests=data["requests"],
        duration_seconds=data["duration_us"] / 1e6,
        non_2xx=data["status"],
        socket_errors=data["socket"],
        latency_p50_ms=data["p50_us"] / 1000,
        latency_p99_ms=data["p99_us"] / 1000,
    )


async def _python_load(
    base_url: str, targets: list[Target], method: str, body: str | None,
    duration: float, connections: int,
) -> LoadResult:
    latencies: list[float] = []
    counts = {"requests": 0, "non_2xx": 0, "socket": 0}
    data = body.encode() if body is not None else None
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(base_url=base_url, connector=connector) as session:
        started = time.perf_counter()
        deadline = started + duration

        async def worker(offset: int) -> None:
            index = offset
            while time.perf_counter() < deadline:
                target = targets[index % len(targets)]
                index += 1
                headers = {"Content-Type": "application/json"}
                if target.authorization:
                    headers["Authorization"] = target.authorization
                if target.if_none_match:
                    headers["If-None-Match"] = target.if_none_match
                sent = time.perf_counter()
                try:
                    async with session.request(
                        method, target.path, headers=headers, data=data
                    ) as response:
                        await response.read()
                        status = response.status
                except aiohttp.ClientError:
                    counts["socket"] += 1
                    continue
                latencies.append(time.perf_counter() - sent)
                counts["requests"] += 1
                if status >= 400:  # as wrk counts: a 304 answer is a success
                    counts["non_2xx"] += 1

        await asyncio.gather(*(worker(k * 7) for k in range(connections)))
        elapsed = time.perf_counter() - started
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return LoadResult(
        tool="python-aiohttp",
        requests=counts["requests"],
        duration_seconds=elapsed,
        non_2xx=counts["non_2xx"],
        socket_errors=counts["socket"],
        latency_p50_ms=quantiles[49] * 1000,
        latency_p99_ms=quantiles[98] * 1000,
    )


def run_load(
    tool: str, base_url: str, targets: list[Target], *, method: str = "GET",
    body: str | None = None, duration: float, connections: int, threads: int,
) -> LoadResult:
    """Drive `targets` for `duration` seconds with the chosen tool (`wrk` or `python`)."""
    if tool == "wrk":
        return run_wrk(base_url, targets, method=method, body=body, duration=duration,
                       connections=connections, threads=threads)
    return asyncio.run(_python_load(base_url, targets, method, body, duration, connections))
