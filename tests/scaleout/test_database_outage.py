"""PostgreSQL unreachable → 503 fast with a clear error, and recovery without a restart
(issue 5). Needs TEST_DATABASE_URL (PostgreSQL); skipped loudly otherwise."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from app.models.enums import SatelliteType
from tests.fixtures.forwarder import TcpForwarder
from tests.fixtures.satellites import satellite_factory
from tests.fixtures.server import eventually, make_settings, running
from tests.scaleout.conftest import POSTGRES_URL

pytestmark = pytest.mark.skipif(
    not POSTGRES_URL.startswith(("postgres://", "postgresql://")),
    reason="SKIPPED LOUDLY: the database outage test needs PostgreSQL; set TEST_DATABASE_URL",
)


async def test_an_unreachable_database_answers_503_fast_and_recovers(
    shared_database: str, tmp_path: Path
) -> None:
    target = urlsplit(shared_database)
    proxy = TcpForwarder(target.hostname or "127.0.0.1", target.port or 5432)
    await proxy.start()
    through_proxy = urlunsplit(target._replace(
        netloc=f"{target.username or 'postgres'}@127.0.0.1:{proxy.port}"))
    try:
        settings = make_settings(tmp_path, database_url=through_proxy)
        async with running(settings) as (rt, http):
            satellite = await satellite_factory(rt)(satellite_type=SatelliteType.GLOBAL)
            async with http.get(satellite.path("config"), headers=satellite.headers) as response:
                assert response.status == 200

            await proxy.stop()  # the database goes away
            started = time.monotonic()
            async with http.get(satellite.path("config"), headers=satellite.headers) as response:
                assert response.status == 503
                body = await response.json()
                assert response.headers["Retry-After"]
            assert body["error"] == "database_unavailable"
            assert "Traceback" not in str(body)
            assert time.monotonic() - started < 5.0
            async with http.get("/api/health") as response:
                assert response.status == 503
                assert response.headers["Retry-After"]
                assert (await response.json())["error"] == "database_unavailable"  # one code

            await proxy.start()  # back, on the same port: no restart of the server

            async def answered() -> bool:
                async with http.get(satellite.path("config"),
                                    headers=satellite.headers) as response:
                    return response.status == 200

            # Connections broken by the outage may fail a request or two first.
            await eventually(answered)
    finally:
        await proxy.stop()
