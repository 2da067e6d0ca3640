"""The one mapping from unexpected exceptions to answers: a client that hung up is not a
database outage, a database connection that broke is."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from app.main import create_app
from tests.fixtures.server import make_settings


async def _reset(request: web.Request) -> web.StreamResponse:
    """Fails the way a broken database connection (or a vanished client) fails."""
    if request.query.get("after_client_left"):
        while request.transport is not None and not request.transport.is_closing():
            await asyncio.sleep(0.01)
    raise ConnectionResetError(104, "Connection reset by peer")


@pytest.fixture
async def base_url(tmp_path: Path) -> AsyncIterator[str]:
    # As `serve` runs it: handlers are not cancelled when their client leaves (aiohttp's
    # TestServer cancels them, which would hide what this test looks at).
    app = create_app(make_settings(tmp_path))
    app.router.add_get("/test/reset", _reset)
    runner = web.AppRunner(app, handler_cancellation=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def test_a_reset_while_the_client_waits_is_a_database_outage(base_url: str) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{base_url}/test/reset") as response:
        assert response.status == 503
        body = await response.json()
        assert body["error"] == "database_unavailable"
        assert response.headers["Retry-After"]


async def test_a_client_that_hung_up_is_not_reported_as_a_database_outage(
    base_url: str, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="app.rest.errors")
    host, port = base_url.removeprefix("http://").split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /test/reset?after_client_left=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(0.1)
    writer.transport.abort()  # the client gives up

    async def logged() -> list[str]:
        return [record.getMessage() for record in caplog.records]

    for _ in range(200):
        if "client closed the connection before the answer" in await logged():
            break
        await asyncio.sleep(0.02)
    messages = await logged()
    assert "client closed the connection before the answer" in messages
    assert "database unreachable" not in messages
