"""Command poll and command result over real HTTP (docs/protocol.md §7, §8; defect 5)."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from hypothesis import given, settings
from hypothesis import strategies as st
from tortoise import connections

from app.main import create_app
from app.models import SatelliteCommand
from app.models.enums import (
    CommandPriority,
    CommandStatus,
    CommandType,
    SatelliteStatus,
    SatelliteType,
)
from app.rest.context import RUNTIME_KEY
from app.runtime import Runtime
from app.services.commands.queue import enqueue_command
from app.services.commands.sweeps import expire_undelivered, requeue_expired_leases
from app.services.common.actors import CLI_ACTOR
from app.services.satellites.admin import create_satellite
from tests.fixtures.live import poll_commands as poll
from tests.fixtures.live import report_result as report
from tests.fixtures.satellites import SatelliteFactory, TestSatellite, until_poll_held
from tests.fixtures.server import TEST_SECRET, RunningServer, make_settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]

Json = dict[str, Any]


async def enqueue(
    rt: Runtime,
    satellite: TestSatellite,
    priority: CommandPriority = CommandPriority.NORMAL,
    **options: Any,
) -> SatelliteCommand:
    return await enqueue_command(
        rt,
        satellite_id=satellite.id,
        command_type=options.pop("command_type", CommandType.CONFIGURE),
        priority=priority,
        payload=options.pop("payload", {"event": "mcp_installation_created"}),
        actor=CLI_ACTOR,
        **options,
    )


def ids_of(page: Json) -> list[str]:
    return [command["id"] for command in page["commands"]]


@asynccontextmanager
async def running(tmp_path: Path, **overrides: Any) -> AsyncIterator[RunningServer]:
    """A server with its own settings (same wiring as the `server` fixture)."""
    app = create_app(make_settings(tmp_path, **overrides))
    test_server = TestServer(app, host="127.0.0.1", port=0)
    await test_server.start_server()
    try:
        yield RunningServer(test_server, app[RUNTIME_KEY])
    finally:
        await test_server.close()


async def active_satellite(rt: Runtime, name: str) -> TestSatellite:
    row, api_key = await create_satellite(
        rt, name=name, satellite_type=SatelliteType.GLOBAL, team_id=None
    )
    await rt.fleet.apply_admin_change(row.id, "test", status=SatelliteStatus.ACTIVE)
    return TestSatellite(row.id, name, api_key)


# ---- delivery order and leases -------------------------------------------------


async def test_commands_are_delivered_by_priority_then_creation_time(
    http: aiohttp.ClientSession, rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite()
    low = await enqueue(rt, satellite, CommandPriority.LOW)
    normal_1 = await enqueue(rt, satellite, CommandPriority.NORMAL)
    immediate = await enqueue(rt, satellite, CommandPriority.IMMEDIATE)
    high = await enqueue(rt, satellite, CommandPriority.HIGH)
    normal_2 = await enqueue(rt, satellite, CommandPriority.NORMAL)

    status, page = await poll(http, satellite)

    assert status == 200
    assert ids_of(page) == [immediate.id, high.id, normal_1.id, normal_2.id, low.id]
    assert [c["priority"] for c in page["commands"]] == [
        "immediate", "high", "normal", "normal", "low"
    ]


async def test_limit_takes_the_best_commands_first_and_leaves_the_rest_pending(
    http: aiohttp.ClientSession, rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite()
    low = await enqueue(rt, satellite, CommandPriority.LOW)
    high = await enqueue(rt, satellite, CommandPriority.HIGH)

    _, first = await poll(http, satellite, limit=1)
    _, second = await poll(http, satellite, limit=1)

    assert ids_of(first) == [high.id]
    assert ids_of(second) == [low.id]


async def test_delivered_command_is_not_delivered_again_within_its_lease(
    http: aiohttp.ClientSession, rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite()
    command = await enqueue(rt, satellite)

    _, first = await poll(http, satellite)
    _, second = await poll(http, satellite)

    assert ids_of(first) == [command.id]
    [delivered] = first["commands"]
    assert delivered["attempt"] == 1
    assert delivered["payload"] == {"event": "mcp_installation_created"}
    assert delivered["correlation_id"] == command.correlation_id
    assert delivered["lease_expires_at"].endswith("Z")
    assert delivered["created_at"].endswith("Z")
    assert second["commands"] == []
    row = await SatelliteCommand.get(id=command.id)
    assert row.status is CommandStatus.ACKNOWLEDGED
    assert row.delivered_at is not None


async def test_twenty_concurrent_polls_deliver_each_of_ten_commands_exactly_once(
    http: aiohttp.ClientSession, rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite()
    created = {(await enqueue(rt, satellite)).id for _ in range(10)}

    pages = await asyncio.gather(*(poll(http, satellite, limit=1) for _ in range(20)))

    assert all(status == 200 for status, _ in pages)
    delivered = [command_id for _, page in pages for command_id in ids_of(page)]
    assert sorted(delivered) == sorted(created)


async def test_expired_lease_redelivers_with_the_next_attempt_number(tmp_path: Path) -> None:
    async with running(tmp_path, command_lease_seconds=1) as server, aiohttp.ClientSession(
        base_url=server.url("/")
    ) as http:
        satellite = await active_satellite(server.rt, "lease-sat")
        command = await enqueue(server.rt, satellite)
        _, first = await poll(http, satellite)
        assert [c["attempt"] for c in first["commands"]] == [1]

        await asyncio.sleep(1.05)
        await requeue_expired_leases(server.rt)
        _, second = await poll(http, satellite)

    assert ids_of(second) == [command.id]
    assert second["commands"][0]["attempt"] == 2


async def test_lease_sweep_job_runs_by_itself_in_the_server(tmp_path: Path) -> None:
    async with running(tmp_path, command_lease_seconds=1, jobs_interval_seconds=0.1) as server, \
            aiohttp.ClientSession(base_url=server.url("/")) as http:
        satellite = await active_satellite(server.rt, "job-sat")
        command = await enqueue(server.rt, satellite)
        await poll(http, satellite)
        # No explicit job call: the scheduled job re-queues, the long poll is woken.
        started = time.monotonic()
        _, again = await poll(http, satellite, wait=20)

    # Lease 1 s + job interval, woken at once (well before the 20 s wait would end).
    assert time.monotonic() - started < 15
    assert ids_of(again) == [command.id]
    assert again["commands"][0]["attempt"] == 2


async def test_exhausted_attempts_end_failed_and_are_never_redelivered(tmp_path: Path) -> None:
    async with running(tmp_path, command_lease_seconds=1) as server, aiohttp.ClientSession(
        base_url=server.url("/")
    ) as http:
        satellite = await active_satellite(server.rt, "exhausted-sat")
        command = await enqueue(server.rt, satellite, max_attempts=1)
        await poll(http, satellite)
        await asyncio.sleep(1.05)
        await requeue_expired_leases(server.rt)
        _, after = await poll(http, satellite)
        row = await SatelliteCommand.get(id=command.id)

    assert after["commands"] == []
    assert row.status is CommandStatus.FAILED
    assert row.error_message == "lease expired after 1 attempt"


async def test_command_past_its_expiry_is_never_delivered(
    http: aiohttp.ClientSession, rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite()
    command = await enqueue(rt, satellite, expires_in_seconds=1)
    await asyncio.sleep(1.05)

    _, page = await poll(http, satellite)
    await expire_undelivered(rt)  # idempotent: the server's own job may have run already

    assert page["commands"] == []
    assert (await SatelliteCommand.get(id=command.id)).status is CommandStatus.EXPIRED


# ---- polling mode --------------------------------------------------------------


@pytest.mark.parametrize(
    ("priority", "expected"),
    [
        (CommandPriority.IMMEDIATE, ("immediate", 2)),
        (CommandPriority.HIGH, ("normal", 10)),
        (CommandPriority.NORMAL, ("normal", 30)),
        (CommandPriority.LOW, ("normal", 30)),
    ],
)
async def test_polling_mode_follows_the_best_delivered_priority(
    http: aiohttp.ClientSession,
    rt: Runtime,
    make_satellite: SatelliteFactory,
    priority: CommandPriority,
    expected: tuple[str, int],
) -> None:
    satellite = await make_satellite()
    await enqueue(rt, satellite, priority)

    _, page = await poll(http, satellite)

    assert (page["polling_mode"], page["next_poll_interval"]) == expected


async def test_polling_mode_counts_commands_still_pending_after_the_page(
    http: aiohttp.ClientSession, rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite()
    await enqueue(rt, satellite, CommandPriority.IMMEDIATE)
    await enqueue(rt, satellite, CommandPriority.IMMEDIATE)

    _, first = await poll(http, satellite, limit=1)
    _, second = await poll(http, satellite, limit=1)
    _, third = await poll(http, satellite, limit=1)

    assert (first["polling_mode"], first["next_poll_interval"]) == ("immediate", 2)
    assert (second["polling_mode"], second["next_poll_interval"]) == ("immediate", 2)
    assert third == {"commands": [], "polling_mode": "slow", "next_poll_interval": 60}


async def test_inactive_satellite_gets_an_empty_list_with_200(
    http: aiohttp.ClientSession, rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite(active=False)
    await enqueue(rt, satellite)

    status, page = await poll(http, satellite)

    assert status == 200
    assert page == {"commands": [], "polling_mode": "slow", "next_poll_interval": 60}


async def test_satellite_in_maintenance_gets_nothing_and_keeps_its_commands(
    http: aiohttp.ClientSession, rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite()
    command = await enqueue(rt, satellite)
    await rt.fleet.apply_admin_change(satellite.id, "test", status=SatelliteStatus.MAINTENANCE)

    _, during = await poll(http, satellite)
    await rt.fleet.apply_admin_change(satellite.id, "test", status=SatelliteStatus.ACTIVE)
    _, after = await poll(http, satellite)

    assert during["commands"] == []
    assert ids_of(after) == [command.id]


# ---- the idle poll runs from memory ---------------------------------------------


def spy_on_database(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count SQL statements issued by tasks created after this call (request handlers).

    The real methods still run; background loops that existed before (fleet
    refresh, jobs) are not the request path and are left out.
    """
    background = set(asyncio.all_tasks())
    statements: list[str] = []
    client_class = type(connections.get("default"))
    for name in ("execute_query", "execute_query_dict", "execute_insert", "execute_many"):
        original: Callable[..., Any] = getattr(client_class, name)

        def spy(original: Callable[..., Any] = original) -> Callable[..., Any]:
            async def counting(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
                if asyncio.current_task() not in background:
                    statements.append(query)
                return await original(self, query, *args, **kwargs)

            return counting

        monkeypatch.setattr(client_class, name, spy())
    return statements


async def test_idle_poll_does_no_database_io(
    server: RunningServer, make_satellite: SatelliteFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    satellite = await make_satellite()
    async with aiohttp.ClientSession(base_url=server.url("/")) as warm:
        assert (await poll(warm, satellite))[0] == 200  # verifies and caches the key

    statements = spy_on_database(monkeypatch)
    async with aiohttp.ClientSession(base_url=server.url("/")) as http:
        status, page = await poll(http, satellite)

    assert status == 200
    assert page["commands"] == []
    assert statements == []


async def test_poll_with_pending_work_does_query_so_the_spy_is_real(
    server: RunningServer, make_satellite: SatelliteFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    satellite = await make_satellite()
    async with aiohttp.ClientSession(base_url=server.url("/")) as warm:
        await poll(warm, satellite)
    await enqueue(server.rt, satellite)

    statements = spy_on_database(monkeypatch)
    async with aiohttp.ClientSession(base_url=server.url("/")) as http:
        _, page = await poll(http, satellite)

    assert len(page["commands"]) == 1
    assert any("satellite_commands" in statement for statement in statements)


# ---- long poll -----------------------------------------------------------------


async def test_long_poll_returns_as_soon_as_a_command_is_enqueued(
    http: aiohttp.ClientSession, rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite()
    held = asyncio.create_task(poll(http, satellite, wait=20))
    await until_poll_held(rt, satellite.id)
    assert not held.done()

    started = time.monotonic()
    command = await enqueue(rt, satellite, CommandPriority.IMMEDIATE)
    status, page = await asyncio.wait_for(held, timeout=15)

    assert time.monotonic() - started < 10  # woken, long before the 20 s wait ends
    assert status == 200
    assert ids_of(page) == [command.id]
    assert page["polling_mode"] == "immediate"


async def test_long_poll_with_nothing_to_deliver_answers_empty_after_the_wait(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite()
    await poll(http, satellite)  # the key is verified (and cached) outside the timing
    started = time.monotonic()

    status, page = await poll(http, satellite, wait=0.3)

    assert 0.25 <= time.monotonic() - started < 10  # held for the wait, then answered
    assert status == 200
    assert page == {"commands": [], "polling_mode": "slow", "next_poll_interval": 60}


_ENQUEUE_FROM_ANOTHER_PROCESS = """
import asyncio, sys
from app.config import Settings
from app.db import close_database, open_database
from app.models.enums import CommandType
from app.services.common.actors import CLI_ACTOR
from app.services.commands.queue import enqueue_command
from app.runtime import build_runtime

async def main() -> None:
    settings = Settings(database_url=sys.argv[1], secret_key=sys.argv[2])
    await open_database(settings)
    try:
        rt = build_runtime(settings)
        command = await enqueue_command(
            rt, satellite_id=sys.argv[3], command_type=CommandType.RESTART, actor=CLI_ACTOR
        )
        print(command.id)
    finally:
        await close_database()

asyncio.run(main())
"""


@pytest.mark.slow
async def test_long_poll_notices_a_command_written_by_another_process(
    http: aiohttp.ClientSession, rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite()
    held = asyncio.create_task(poll(http, satellite, wait=30))
    await until_poll_held(rt, satellite.id)

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _ENQUEUE_FROM_ANOTHER_PROCESS,
        rt.settings.database_url, TEST_SECRET, satellite.id,
        cwd=PROJECT_ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    # The command is written while the poll is still held (its wait is 30 s)...
    out, err = await asyncio.wait_for(process.communicate(), timeout=20)
    assert process.returncode == 0, err.decode()
    written_at = time.monotonic()
    status, page = await asyncio.wait_for(held, timeout=15)

    # ...and noticed by the fleet refresh (every 0.2 s), not at the end of the wait.
    assert time.monotonic() - written_at < 10
    assert status == 200
    assert ids_of(page) == [out.decode().strip()]


async def test_shutdown_answers_a_held_long_poll_with_an_empty_list(tmp_path: Path) -> None:
    async with running(tmp_path) as server:
        satellite = await active_satellite(server.rt, "shutdown-sat")
        async with aiohttp.ClientSession(base_url=server.url("/")) as http:
            held = asyncio.create_task(poll(http, satellite, wait=20))
            await until_poll_held(server.rt, satellite.id)
            assert not held.done()
            started = time.monotonic()
            await server.server.close()
            status, page = await asyncio.wait_for(held, timeout=15)

    assert time.monotonic() - started < 15  # answered at shutdown, not after the 20 s wait
    assert status == 200
    assert page["commands"] == []


# ---- query validation and rate limits ----------------------------------------------


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 51}, {"limit": "ten"},
                                    {"wait": 31}, {"wait": -1}])
async def test_out_of_range_query_is_a_validation_error(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory, params: Json
) -> None:
    satellite = await make_satellite()

    status, body = await poll(http, satellite, **params)

    assert status == 400
    assert "validation" in body["error"]


async def test_reference_client_query_with_last_poll_is_accepted(
    http: aiohttp.ClientSession, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite()

    status, _ = await poll(http, satellite, last_poll="2026-01-01T00:00:00.000Z", limit="10")

    assert status == 200


async def test_poll_flooding_is_rate_limited_but_results_never_are(tmp_path: Path) -> None:
    async with running(tmp_path, poll_burst=3, poll_rate_per_second=0.1) as server, \
            aiohttp.ClientSession(base_url=server.url("/")) as http:
        satellite = await active_satellite(server.rt, "flood-sat")
        commands = [await enqueue(server.rt, satellite) for _ in range(3)]
        statuses = [(await poll(http, satellite, limit=1))[0] for _ in range(3)]
        async with http.get(satellite.path("commands"), headers=satellite.headers) as limited:
            limited_body = await limited.json()
            retry_after = limited.headers.get("Retry-After")
        results = [
            (await report(http, satellite, {"command_id": c.id, "status": "completed"}))[0]
            for c in commands
        ] + [
            (await report(http, satellite, {"command_id": commands[0].id,
                                            "status": "completed"}))[0]
            for _ in range(20)
        ]

    assert statuses == [200, 200, 200]
    assert limited.status == 429
    assert "rate limit" in limited_body["error"]
    assert retry_after is not None
    assert int(retry_after) >= 1
    assert results == [200] * 23


# ---- results ---------------------------------------------------------------------


async def delivered(
    http: aiohttp.ClientSession, rt: Runtime, satellite: TestSatellite, **options: Any
) -> SatelliteCommand:
    command = await enqueue(rt, satellite, **options)
    _, page = await poll(http, satellite)
    assert command.id in ids_of(page)
    return command


async def test_reference_client_result_with_error_field_is_recorded(
    http: aiohttp.ClientSession, rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite()
    ok = await delivered(http, rt, satellite)
    broken = await delivered(http, rt, satellite)

    ok_status, ok_body = await report(http, satellite, {
        "command_id": ok.id, "status": "completed", "result": {"processes": 2},
    })
    failed_status, failed_body = await report(http, satellite, {
        "command_id": broken.id, "status": "failed", "error": "spawn ENOENT",
    })

    assert (ok_status, ok_body["success"], ok_body["status"]) == (200, True, "completed")
    assert (failed_status, failed_body["status"]) == (200, "failed")
    assert "duplicate" not in ok_body
    assert "late" not in ok_body
    ok_row = await SatelliteCommand.get(id=ok.id)
    broken_row = await SatelliteCommand.get(id=broken.id)
    assert ok_row.result == {"processes": 2}
    assert ok_row.completed_at is not None
    assert broken_row.status is CommandStatus.FAILED
    assert broken_row.error_message == "spawn ENOENT"


async def test_progress_then_completion_follows_the_allowed_transitions(
    http: aiohttp.ClientSession, rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite()
    command = await delivered(http, rt, satellite)

    answers = [
        await report(http, satellite, {"command_id": command.id, "status": status})
        for status in ("acknowledged", "executing", "completed")
    ]

    assert [(code, body["status"]) for code, body in answers] == [
        (200, "acknowledged"), (200, "executing"), (200, "completed")
    ]


async def test_repeated_terminal_result_is_a_duplicate_and_changes_nothing(
    http: aiohttp.ClientSession, rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite()
    command = await delivered(http, rt, satellite)
    await report(http, satellite, {"command_id": command.id, "status": "completed",
                                   "result": {"first": True}})

    status, body = await report(http, satellite, {"command_id": command.id,
                                                  "status": "completed",
                                                  "result": {"second": True}})

    assert status == 200
    assert body["duplicate"] is True
    assert body["status"] == "completed"
    assert (await SatelliteCommand.get(id=command.id)).result == {"first": True}


async def test_conflicting_terminal_result_is_409_invalid_transition(
    http: aiohttp.ClientSession, rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite()
    command = await delivered(http, rt, satellite)
    await report(http, satellite, {"command_id": command.id, "status": "completed"})

    status, body = await report(http, satellite, {"command_id": command.id, "status": "failed"})

    assert status == 409
    assert body["error"] == "invalid_transition"
    assert (await SatelliteCommand.get(id=command.id)).status is CommandStatus.COMPLETED


async def test_result_for_another_satellites_command_is_404_command_not_found(
    http: aiohttp.ClientSession, rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    owner = await make_satellite()
    intruder = await make_satellite()
    command = await delivered(http, rt, owner)

    status, body = await report(http, intruder, {"command_id": command.id,
                                                 "status": "completed"})
    unknown_status, unknown = await report(http, intruder, {"command_id": "no-such-command",
                                                            "status": "completed"})

    assert (status, body["error"]) == (404, "command_not_found")
    assert (unknown_status, unknown["error"]) == (404, "command_not_found")
    assert (await SatelliteCommand.get(id=command.id)).status is CommandStatus.ACKNOWLEDGED


async def test_late_result_after_expiry_is_kept_and_flagged_late(tmp_path: Path) -> None:
    async with running(tmp_path, command_lease_seconds=1) as server, aiohttp.ClientSession(
        base_url=server.url("/")
    ) as http:
        satellite = await active_satellite(server.rt, "late-expired-sat")
        command = await delivered(http, server.rt, satellite, expires_in_seconds=1)
        await asyncio.sleep(1.05)
        await requeue_expired_leases(server.rt)
        assert (await SatelliteCommand.get(id=command.id)).status is CommandStatus.EXPIRED

        status, body = await report(http, satellite, {
            "command_id": command.id, "status": "completed", "result": {"ok": True},
        })
        row = await SatelliteCommand.get(id=command.id)

    assert (status, body["late"], body["status"]) == (200, True, "completed")
    assert row.status is CommandStatus.COMPLETED
    assert row.result == {"ok": True}
    assert row.late is True


async def test_late_result_after_requeue_is_kept_and_not_redelivered(tmp_path: Path) -> None:
    async with running(tmp_path, command_lease_seconds=1) as server, aiohttp.ClientSession(
        base_url=server.url("/")
    ) as http:
        satellite = await active_satellite(server.rt, "late-requeued-sat")
        command = await delivered(http, server.rt, satellite)
        await asyncio.sleep(1.05)
        await requeue_expired_leases(server.rt)
        assert (await SatelliteCommand.get(id=command.id)).status is CommandStatus.PENDING

        status, body = await report(http, satellite, {
            "command_id": command.id, "status": "failed", "error": "timeout",
        })
        _, page = await poll(http, satellite)

    assert (status, body["late"], body["status"]) == (200, True, "failed")
    assert page["commands"] == []


# ---- fuzzing ---------------------------------------------------------------------

_json_leaf = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
_json = st.recursive(
    _json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)


async def test_random_result_bodies_never_produce_a_server_error(
    http: aiohttp.ClientSession, rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    satellite = await make_satellite()
    command = await delivered(http, rt, satellite)
    loop = asyncio.get_running_loop()
    statuses = st.sampled_from(
        ["acknowledged", "executing", "completed", "failed", "expired", "pending", ""]
    ) | _json
    bodies = st.fixed_dictionaries(
        {},
        optional={
            "command_id": st.sampled_from([command.id, "x" * 65, ""]) | _json,
            "status": statuses,
            "result": _json,
            "error": _json,
            "error_message": _json,
        },
    ) | _json

    async def send(body: Any) -> int:
        async with http.post(satellite.path("command-result"), headers=satellite.headers,
                             json=body) as response:
            await response.read()
            return response.status

    @settings(max_examples=50, deadline=None, database=None)
    @given(body=bodies)
    def check(body: Any) -> None:
        status = asyncio.run_coroutine_threadsafe(send(body), loop).result(timeout=10)
        assert status < 500, body

    await asyncio.to_thread(check)
