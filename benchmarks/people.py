"""What people see while a fleet loads the server: probes for `benchmarks.capacity`.

- `subscriber_fanout`: N graphql-transport-ws subscribers of `satelliteMetrics`
  for a probe satellite; the probe's heartbeats are sent from here and each
  subscriber's receive time is taken against the send time;
- `enqueue_commands`: `enqueueCommand` mutations at a fixed rate; returns when
  each mutation's answer arrived (`time.monotonic()`, comparable across
  processes on Linux), for `delivery_latencies` against the times a simulated
  satellite's poll delivered them;
- `dashboard_latency`: concurrent clients running the README's dashboard query.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp

from benchmarks.fleet import DASHBOARD_QUERY, HEARTBEAT_BODY

PROTOCOL = "graphql-transport-ws"


@dataclass
class Latencies:
    """Samples in milliseconds, summarised; `expected`/`missing` count what never came."""

    samples: list[float]
    expected: int = 0
    errors: int = 0
    note: str = ""

    @property
    def missing(self) -> int:
        return max(0, self.expected - len(self.samples))

    def percentile(self, share: float) -> float:
        if not self.samples:
            return math.nan
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def as_dict(result: Latencies) -> dict[str, Any]:
    data = asdict(result)
    del data["samples"]
    return {**data, "count": len(result.samples), "missing": result.missing,
            "p50_ms": round(result.percentile(0.5), 1), "p99_ms": round(result.percentile(0.99), 1),
            "max_ms": round(max(result.samples, default=math.nan), 1)}


def describe(result: Latencies) -> str:
    text = (f"p50 {result.percentile(0.5):.0f} ms, p99 {result.percentile(0.99):.0f} ms, "
            f"max {max(result.samples, default=math.nan):.0f} ms over {len(result.samples):,}")
    if result.missing:
        text += f", {result.missing:,} missing"
    if result.errors:
        text += f", {result.errors:,} errors"
    return text + (f" ({result.note})" if result.note else "")


def passed(result: Latencies, p99_ms: float, *, p50: float | None = None) -> bool:
    return (bool(result.samples) and result.missing == 0 and result.errors == 0
            and result.percentile(0.99) <= p99_ms
            and (p50 is None or result.percentile(0.5) <= p50))


# ---- subscriptions -------------------------------------------------------------------
_METRICS = ("subscription ($id: ID!) { satelliteMetrics(satelliteId: $id) "
            "{ cpuUsagePercent } }")


async def _subscriber(session: aiohttp.ClientSession, url: str, token: str, satellite_id: str,
                      ready: asyncio.Event, seen: dict[float, float], gate: asyncio.Semaphore,
                      opened: list[float]) -> None:
    async with gate:
        started = time.monotonic()
        ws = await session.ws_connect(f"{url}/graphql", protocols=[PROTOCOL], heartbeat=None)
        await ws.send_json({"type": "connection_init", "payload": {"authToken": token}})
        while (await ws.receive_json()).get("type") != "connection_ack":
            pass
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {
            "query": _METRICS, "variables": {"id": satellite_id}}})
        opened.append((time.monotonic() - started) * 1000)
    ready.set()
    try:
        async for message in ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            received = time.monotonic()  # before parsing: the probe's own cost is not latency
            data = json.loads(message.data)
            if data.get("type") == "next":
                cpu = data["payload"]["data"]["satelliteMetrics"]["cpuUsagePercent"]
                seen.setdefault(cpu, received)
    finally:
        await ws.close()


async def subscriber_fanout(url: str, token: str, probe: tuple[str, str], *,
                            subscribers: int = 1000, probes: int = 20,
                            interval: float = 1.0) -> Latencies:
    """Each probe heartbeat carries its own CPU value; latency = first receipt by each
    subscriber − the moment the heartbeat was sent."""
    satellite_id, api_key = probe
    connector = aiohttp.TCPConnector(limit=0)
    seen: list[dict[float, float]] = [{} for _ in range(subscribers)]
    opened: list[float] = []
    gate = asyncio.Semaphore(100)
    async with aiohttp.ClientSession(connector=connector) as session:
        readies = [asyncio.Event() for _ in range(subscribers)]
        tasks = [asyncio.create_task(_subscriber(session, url, token, satellite_id, readies[i],
                                                 seen[i], gate, opened))
                 for i in range(subscribers)]
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), timeout=300)
        await asyncio.sleep(1.0)  # the last subscriptions reach the bus
        sent: dict[float, float] = {}
        body = json.loads(HEARTBEAT_BODY)
        headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        for index in range(probes):
            cpu = round(50.0 + index / 100, 2)
            body["system_metrics"]["cpu_usage_percent"] = cpu
            sent[cpu] = time.monotonic()
            async with session.post(f"{url}/api/satellites/{satellite_id}/heartbeat",
                                    data=json.dumps(body), headers=headers) as response:
                await response.read()
            await asyncio.sleep(interval)
        await asyncio.sleep(3.0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    samples = [(received - sent[cpu]) * 1000 for per in seen for cpu, received in per.items()
               if cpu in sent]
    opened.sort()
    note = (f"{len(opened):,} subscribed, connect p99 "
            f"{opened[min(len(opened) - 1, int(len(opened) * 0.99))]:.0f} ms" if opened else "")
    return Latencies(samples, expected=subscribers * probes, note=note)


# ---- commands ------------------------------------------------------------------------
_ENQUEUE = ("mutation ($id: ID!) { enqueueCommand(satelliteId: $id, commandType: HEALTH_CHECK, "
            "priority: IMMEDIATE) { id } }")


async def enqueue_commands(url: str, token: str, satellite_ids: list[str], *,
                           rate: float = 20.0, duration: float = 60.0
                           ) -> tuple[dict[str, float], Latencies]:
    """Mutations at `rate`/s round robin over `satellite_ids`, each on its own schedule
    (a slow one never delays the next); (command id → answer time, mutation latency)."""
    returned: dict[str, float] = {}
    latencies: list[float] = []
    errors = 0
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    async def one(session: aiohttp.ClientSession, satellite_id: str) -> None:
        nonlocal errors
        started = time.monotonic()
        try:
            async with session.post(f"{url}/graphql", headers=headers, data=json.dumps({
                    "query": _ENQUEUE, "variables": {"id": satellite_id}}),
                    timeout=aiohttp.ClientTimeout(total=10)) as response:
                answer = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError):
            errors += 1
            return
        done = time.monotonic()
        command = (answer.get("data") or {}).get("enqueueCommand")
        if response.status != 200 or answer.get("errors") or not command:
            errors += 1
            return
        returned[command["id"]] = done
        latencies.append((done - started) * 1000)

    count = int(rate * duration)
    async with aiohttp.ClientSession() as session:
        begin = time.monotonic()
        tasks = []
        for index in range(count):
            await asyncio.sleep(max(0.0, begin + index / rate - time.monotonic()))
            tasks.append(asyncio.create_task(one(session, satellite_ids[index %
                                                                      len(satellite_ids)])))
        await asyncio.gather(*tasks)
    return returned, Latencies(latencies, expected=count, errors=errors,
                               note="enqueueCommand answered")


def delivery_latencies(returned: dict[str, float], received: dict[str, float]) -> Latencies:
    """Poll answered (satellite side) − mutation answered (person side), per command."""
    samples = [(received[command] - at) * 1000 for command, at in returned.items()
               if command in received]
    return Latencies(samples, expected=len(returned))


# ---- dashboard -----------------------------------------------------------------------
async def dashboard_latency(url: str, token: str, *, clients: int = 20,
                            duration: float = 20.0) -> Latencies:
    body = json.dumps({"query": DASHBOARD_QUERY})
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    samples: list[float] = []
    errors = 0
    deadline = time.monotonic() + duration

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while time.monotonic() < deadline:
            started = time.monotonic()
            async with session.post(f"{url}/graphql", data=body, headers=headers) as response:
                answer = await response.json(content_type=None)
            if response.status != 200 or answer.get("errors"):
                errors += 1
                continue
            samples.append((time.monotonic() - started) * 1000)

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(client(session) for _ in range(clients)))
    return Latencies(samples, errors=errors,
                     note=f"{len(samples) / duration:,.0f} queries/s")


__all__ = ["Latencies", "as_dict", "dashboard_latency", "delivery_latencies", "describe",
           "enqueue_commands", "passed", "subscriber_fanout"]
