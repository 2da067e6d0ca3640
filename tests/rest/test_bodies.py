"""Request bodies are read whole, however they arrive, and judged by one strict reader."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from app.models import SatelliteHeartbeat
from app.runtime import Runtime
from tests.fixtures.satellites import SatelliteFactory, TestSatellite
from tests.fixtures.server import RunningServer

Json = dict[str, Any]
TS = "2026-01-02T03:04:05.000Z"


async def trickle(server: RunningServer, path: str, headers: dict[str, str], body: bytes,
                  chunk: int = 1400) -> tuple[int, Json]:
    """POST `body` over a raw socket in many small TCP writes (as a slow link delivers it)."""
    url = urlsplit(server.url("/"))
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        head = [f"POST {path} HTTP/1.1", f"Host: {url.netloc}", f"Content-Length: {len(body)}",
                "Connection: close", *(f"{name}: {value}" for name, value in headers.items())]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        await writer.drain()
        for start in range(0, len(body), chunk):
            writer.write(body[start:start + chunk])
            await writer.drain()
            await asyncio.sleep(0.0005)  # each piece reaches the server on its own
        raw = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
    status_line, _, rest = raw.partition(b"\r\n")
    payload = rest.split(b"\r\n\r\n", 1)[1]
    return int(status_line.split()[1]), json.loads(payload)


def log_event(index: int, installation_id: str) -> Json:
    lines = [{"level": "info", "message": f"line {index}-{n} " + "x" * 480, "timestamp": TS}
             for n in range(12)]
    return {"type": "mcp.server.logs", "timestamp": TS, "id": f"batch-{index}",
            "data": {"installation_id": installation_id, "team_id": None, "logs": lines}}


async def test_a_600_kb_event_batch_in_small_writes_is_read_whole(
    server: RunningServer, make_satellite: SatelliteFactory,
) -> None:
    satellite = await make_satellite()
    body = json.dumps({"events": [log_event(i, "0" * 32) for i in range(100)]}).encode()
    assert len(body) > 600_000

    status, answer = await trickle(server, satellite.path("events"), satellite.headers, body)

    assert status == 200, answer
    assert answer["processed"] + answer["failed"] == 100  # every event was judged


async def test_a_700_kb_heartbeat_in_small_writes_is_accepted(
    server: RunningServer, rt: Runtime, make_satellite: SatelliteFactory,
) -> None:
    satellite = await make_satellite()
    processes = [{"id": f"proc-{n:03d}-" + "p" * 200, "server_name": "s" * 250,
                  "status": "running", "health_status": "healthy",
                  "performance_metrics": {"note": "m" * 900}} for n in range(500)]
    body = json.dumps({"status": "active", "processes": processes,
                       "system_metrics": {"cpu_usage_percent": 7, "memory_usage_mb": 64}}
                      ).encode()
    assert len(body) > 700_000

    status, answer = await trickle(server, satellite.path("heartbeat"), satellite.headers, body)

    assert status == 200, answer
    assert rt.fleet.get(satellite.id).process_count == 500  # type: ignore[union-attr]
    await rt.heartbeats.flush()
    assert await SatelliteHeartbeat.filter(satellite_id=satellite.id).count() == 1


async def test_a_body_over_the_limit_without_a_length_is_413(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory,
) -> None:
    satellite = await make_satellite()

    async def chunks() -> Any:  # chunked transfer: no Content-Length to refuse up front
        for _ in range(20):
            yield b" " * (64 * 1024)

    async with http.post(satellite.path("heartbeat"), data=chunks(),
                         headers=satellite.headers) as response:
        assert response.status == 413
        assert (await response.json())["error"] == "validation_failed: body too large"


@pytest.mark.parametrize(("raw", "says"), [
    (b"\xff\xfe{}", "not valid UTF-8"),
    (b"5", "must be a JSON object, not a number"),
    (b"null", "must be a JSON object, not null"),
    (b'"text"', "must be a JSON object, not a string"),
    (b"[]", "must be a JSON object, not an array"),
    (b"{" * 3 + b"}" * 3, "not valid JSON"),
    (b'{"a":' * 65 + b"1" + b"}" * 65, "nested deeper than 64 levels"),
    (b"[" * 50_000, "nested deeper than 64 levels"),
    (b"   ", "is empty"),
])
async def test_malformed_bodies_are_400_saying_what_is_wrong(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, raw: bytes, says: str,
) -> None:
    satellite = await make_satellite()
    for path in ("heartbeat", "command-result", "events"):
        async with http.post(satellite.path(path), data=raw,
                             headers=satellite.headers) as response:
            assert response.status == 400, path
            body = await response.json()
            assert body["error"] == "validation_failed"
            assert says in body["message"], body["message"]


async def test_a_lone_surrogate_in_a_log_line_is_replaced_not_refused(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory,
) -> None:
    satellite: TestSatellite = await make_satellite()
    log = {"level": "info", "message": "broken \ud800 text", "timestamp": TS}
    event = {"type": "mcp.server.logs", "timestamp": TS,
             "data": {"installation_id": "0" * 32, "team_id": None, "logs": [log]}}
    raw = json.dumps({"events": [event]})  # ensure_ascii: the surrogate is sent as \ud800
    assert "\\ud800" in raw
    async with http.post(satellite.path("events"), data=raw.encode(),
                         headers=satellite.headers) as response:
        assert response.status == 200
        answer = await response.json()
    assert answer["processed"] + answer["failed"] == 1
