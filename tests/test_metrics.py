"""`/metrics` over the real app (docs/operations.md §5): latency per route template,
build info, process and Python collectors, database, Redis and command counters."""

from __future__ import annotations

import asyncio
import platform

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from app.models.enums import CommandType
from app.runtime import Runtime
from app.services.commands.queue import enqueue_command
from app.services.common.actors import CLI_ACTOR
from app.version import VERSION
from tests.fixtures.satellites import SatelliteFactory, until_poll_held
from tests.fixtures.server import ON_POSTGRES, TEST_REDIS_URL

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(http: aiohttp.ClientSession) -> Samples:
    async with http.get("/metrics") as response:
        assert response.status == 200
        text = await response.text()
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def test_latency_per_route_template_and_build_info(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory,
) -> None:
    satellite = await make_satellite()
    for _ in range(3):
        async with http.get(satellite.path("commands"), headers=satellite.headers) as response:
            assert response.status == 200
    async with http.get("/api/nothing/secret-id"):
        pass

    samples = await scrape(http)

    route = "/api/satellites/{satellite_id}/commands"
    assert value(samples, "groundstation_http_request_duration_seconds_count",
                 method="GET", route=route) == 3
    assert value(samples, "groundstation_http_request_duration_seconds_bucket",
                 method="GET", route=route, le="+Inf") == 3
    assert value(samples, "groundstation_http_request_duration_seconds_count",
                 method="GET", route="unmatched") == 1
    assert not any(satellite.id in str(labels) or "secret-id" in str(labels)
                   for _, labels in samples)
    assert value(samples, "groundstation_build_info", version=VERSION,
                 python=platform.python_version()) == 1
    assert value(samples, "groundstation_database_up") == 1
    assert (value(samples, "process_resident_memory_bytes") or 0) > 0
    assert value(samples, "python_info", implementation=platform.python_implementation(),
                 major=str(platform.python_version_tuple()[0]),
                 minor=platform.python_version_tuple()[1],
                 patchlevel=platform.python_version_tuple()[2],
                 version=platform.python_version()) == 1
    assert any(name == "python_gc_collections_total" for name, _ in samples)
    pool = value(samples, "groundstation_database_pool_size")
    assert (pool is not None and pool >= 1) if ON_POSTGRES else pool is None
    connected = value(samples, "groundstation_redis_connected")
    assert connected == (1 if TEST_REDIS_URL else None)


async def test_commands_are_counted_from_creation_to_result(
    rt: Runtime, http: aiohttp.ClientSession, make_satellite: SatelliteFactory,
) -> None:
    satellite = await make_satellite()
    poll = asyncio.create_task(_poll(http, satellite.path("commands") + "?wait=10",
                                     satellite.headers))
    await until_poll_held(rt, satellite.id)
    assert value(await scrape(http), "groundstation_held_polls") == 1

    command = await enqueue_command(rt, satellite_id=satellite.id,
                                    command_type=CommandType.HEALTH_CHECK, actor=CLI_ACTOR)
    assert [delivered["id"] for delivered in (await poll)["commands"]] == [command.id]
    for _ in range(2):  # the second report is a duplicate
        async with http.post(satellite.path("command-result"), headers=satellite.headers,
                             json={"command_id": command.id, "status": "completed"}
                             ) as response:
            assert response.status == 200

    samples = await scrape(http)
    assert value(samples, "groundstation_held_polls") == 0
    assert value(samples, "groundstation_commands_created_total") == 1
    assert value(samples, "groundstation_commands_delivered_total") == 1
    assert value(samples, "groundstation_command_results_total", outcome="completed") == 1
    assert value(samples, "groundstation_command_results_total", outcome="duplicate") == 1


async def _poll(http: aiohttp.ClientSession, path: str, headers: dict[str, str]) -> dict:
    async with http.get(path, headers=headers) as response:
        assert response.status == 200
        answer: dict = await response.json()
        return answer
