"""Command queue rules at the service level: enqueue checks, result transitions, cancel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from app.bus import Channels
from app.errors import Conflict, NotFound, ValidationError
from app.models import AuditEntry, SatelliteCommand
from app.models.enums import CommandPriority, CommandStatus, CommandType, SatelliteStatus
from app.runtime import Runtime
from app.services.commands.claims import poll_commands
from app.services.commands.messages import command_message
from app.services.commands.queue import cancel_command, enqueue_command
from app.services.commands.results import ResultOutcome, record_command_result
from app.services.common.actors import CLI_ACTOR, SYSTEM_ACTOR
from app.services.common.clock import ManualClock, utcnow
from app.services.fleet.state import SatelliteState
from tests.fixtures.satellites import SatelliteFactory, until_poll_held
from tests.fixtures.server import postgres_only

Message = tuple[str, dict[str, Any]]


@asynccontextmanager
async def bus_messages(rt: Runtime, channels: Iterable[str]) -> AsyncIterator[list[Message]]:
    received: list[Message] = []

    async def listen() -> None:
        async for channel, message in rt.bus.subscribe(list(channels)):
            received.append((channel, message))

    listener = asyncio.create_task(listen())
    await asyncio.sleep(0)  # the subscription registers on the first iteration
    try:
        yield received
        await asyncio.sleep(0.01)
    finally:
        listener.cancel()


async def satellite_state(make_satellite: SatelliteFactory, rt: Runtime) -> SatelliteState:
    satellite = await make_satellite()
    state = rt.fleet.get(satellite.id)
    assert state is not None
    return state


def has_pending(state: SatelliteState) -> bool:
    return state.has_pending


async def new_command(rt: Runtime, state: SatelliteState, **options: Any) -> SatelliteCommand:
    return await enqueue_command(
        rt, satellite_id=state.id, command_type=CommandType.SPAWN,
        payload={"installation_id": "i-1", "server_name": "files"}, actor=CLI_ACTOR, **options,
    )


async def delivered_command(rt: Runtime, state: SatelliteState) -> SatelliteCommand:
    command = await new_command(rt, state)
    page = await poll_commands(rt, state, limit=10, wait=0)
    assert [item["id"] for item in page.commands] == [command.id]
    return command


async def report(
    rt: Runtime, state: SatelliteState, command: SatelliteCommand, status: CommandStatus,
    result: dict[str, Any] | None = None, error: str | None = None,
) -> ResultOutcome:
    return await record_command_result(
        rt, state, command_id=command.id, status=status, result=result, error_message=error
    )


# ---- enqueue -------------------------------------------------------------------


async def test_enqueue_fills_defaults_from_settings_and_priority(
    rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    state = await satellite_state(make_satellite, rt)
    before = utcnow()

    command = await new_command(rt, state, priority=CommandPriority.HIGH)

    after = utcnow()
    row = await SatelliteCommand.get(id=command.id)
    assert row.status is CommandStatus.PENDING
    assert row.priority_rank == CommandPriority.HIGH.rank
    assert row.max_attempts == rt.settings.command_max_attempts
    expiry = timedelta(seconds=rt.settings.command_expiry_seconds)
    assert before + expiry <= row.expires_at <= after + expiry  # expires one expiry after now
    assert row.attempts == 0
    assert row.correlation_id


async def test_enqueue_for_unknown_or_deleted_satellite_is_not_found(
    rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    state = await satellite_state(make_satellite, rt)
    await rt.fleet.apply_admin_change(state.id, "test", status=SatelliteStatus.DELETED)

    with pytest.raises(NotFound):
        await new_command(rt, state)
    with pytest.raises(NotFound):
        await enqueue_command(rt, satellite_id="missing", command_type=CommandType.KILL,
                              actor=CLI_ACTOR)


@pytest.mark.parametrize(
    "options",
    [
        {"expires_in_seconds": 0},
        {"expires_in_seconds": 86_401},
        {"max_attempts": 0},
        {"payload": ["not", "an", "object"]},
        {"payload": {"blob": "x" * (64 * 1024)}},
        {"payload": {"number": float("nan")}},
        {"priority": "urgent"},
    ],
)
async def test_enqueue_rejects_bad_options(
    rt: Runtime, make_satellite: SatelliteFactory, options: dict[str, Any]
) -> None:
    state = await satellite_state(make_satellite, rt)
    payload = options.pop("payload", {})

    with pytest.raises(ValidationError):
        await enqueue_command(rt, satellite_id=state.id, command_type=CommandType.CONFIGURE,
                              payload=payload, actor=CLI_ACTOR, **options)
    assert await SatelliteCommand.filter(satellite_id=state.id).count() == 0


async def test_enqueue_accepts_the_expiry_bounds(
    rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    state = await satellite_state(make_satellite, rt)

    shortest = await new_command(rt, state, expires_in_seconds=1)
    longest = await new_command(rt, state, expires_in_seconds=86_400)

    assert shortest.expires_at < longest.expires_at


async def test_enqueue_by_cli_is_audited_but_system_commands_are_not(
    rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    state = await satellite_state(make_satellite, rt)

    by_cli = await new_command(rt, state)
    by_system = await enqueue_command(rt, satellite_id=state.id,
                                      command_type=CommandType.CONFIGURE, actor=SYSTEM_ACTOR)

    audited = {str(entry.object_id) for entry in await AuditEntry.filter(
        action="command.created"
    )}
    assert by_cli.id in audited
    assert by_system.id not in audited


async def test_enqueue_marks_pending_and_publishes_wake_up_and_update(
    rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    state = await satellite_state(make_satellite, rt)
    assert not has_pending(state)

    async with bus_messages(rt, [Channels.COMMANDS_PENDING, Channels.COMMAND_UPDATED]) as got:
        command = await new_command(rt, state, priority=CommandPriority.IMMEDIATE)

    assert has_pending(state)
    assert (Channels.COMMANDS_PENDING, {"satellite_id": state.id}) in got
    updates = [message for channel, message in got if channel == Channels.COMMAND_UPDATED]
    assert updates == [command_message(command)]
    assert set(updates[0]) == {"command_id", "satellite_id", "team_id", "status",
                               "command_type", "priority", "updated_at"}
    assert updates[0]["status"] == "pending"
    assert updates[0]["priority"] == "immediate"


# ---- results -------------------------------------------------------------------


async def test_result_may_skip_steps_for_a_command_never_acknowledged(
    rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    state = await satellite_state(make_satellite, rt)
    command = await new_command(rt, state)

    outcome = await report(rt, state, command, CommandStatus.COMPLETED)

    assert outcome == ResultOutcome(CommandStatus.COMPLETED)
    assert (await SatelliteCommand.get(id=command.id)).reported_status is CommandStatus.COMPLETED


async def test_executing_report_renews_the_lease(
    rt: Runtime, make_satellite: SatelliteFactory, clock: ManualClock
) -> None:
    # The runtime's clock stands still until the test moves it (no sleeping).
    state = await satellite_state(make_satellite, rt)
    command = await delivered_command(rt, state)
    leased = await SatelliteCommand.get(id=command.id)
    now = clock.advance(10)  # the satellite reports progress ten seconds later

    outcome = await report(rt, state, command, CommandStatus.EXECUTING)

    row = await SatelliteCommand.get(id=command.id)
    assert outcome.status is CommandStatus.EXECUTING
    assert row.lease_expires_at is not None
    assert leased.lease_expires_at is not None
    assert row.lease_expires_at > leased.lease_expires_at
    assert row.lease_expires_at == now + timedelta(seconds=rt.settings.command_lease_seconds)


async def test_acknowledged_after_executing_is_an_invalid_transition(
    rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    state = await satellite_state(make_satellite, rt)
    command = await delivered_command(rt, state)
    await report(rt, state, command, CommandStatus.EXECUTING)

    with pytest.raises(Conflict) as raised:
        await report(rt, state, command, CommandStatus.ACKNOWLEDGED)

    assert raised.value.code == "invalid_transition"


async def test_progress_after_the_satellite_finished_is_an_invalid_transition(
    rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    state = await satellite_state(make_satellite, rt)
    command = await delivered_command(rt, state)
    await report(rt, state, command, CommandStatus.FAILED, error="boom")

    with pytest.raises(Conflict) as raised:
        await report(rt, state, command, CommandStatus.EXECUTING)

    assert raised.value.code == "invalid_transition"


async def test_repeated_failure_is_a_duplicate_that_keeps_the_first_error(
    rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    state = await satellite_state(make_satellite, rt)
    command = await delivered_command(rt, state)
    await report(rt, state, command, CommandStatus.FAILED, error="first")

    outcome = await report(rt, state, command, CommandStatus.FAILED, error="second")

    assert outcome == ResultOutcome(CommandStatus.FAILED, duplicate=True)
    assert (await SatelliteCommand.get(id=command.id)).error_message == "first"


async def test_result_for_a_cancelled_command_is_kept_late_and_it_stays_cancelled(
    rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    state = await satellite_state(make_satellite, rt)
    command = await delivered_command(rt, state)
    await cancel_command(rt, command.id, actor=CLI_ACTOR)

    outcome = await report(rt, state, command, CommandStatus.COMPLETED, result={"done": 1})
    again = await report(rt, state, command, CommandStatus.COMPLETED)

    row = await SatelliteCommand.get(id=command.id)
    assert outcome == ResultOutcome(CommandStatus.CANCELLED, late=True)
    assert again.duplicate
    assert row.status is CommandStatus.CANCELLED
    assert row.reported_status is CommandStatus.COMPLETED
    assert row.result == {"done": 1}
    assert row.late is True


async def test_progress_for_a_cancelled_command_is_late_and_changes_no_status(
    rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    state = await satellite_state(make_satellite, rt)
    command = await delivered_command(rt, state)
    await cancel_command(rt, command.id, actor=CLI_ACTOR)

    outcome = await report(rt, state, command, CommandStatus.EXECUTING)

    assert outcome == ResultOutcome(CommandStatus.CANCELLED, late=True)
    assert (await SatelliteCommand.get(id=command.id)).status is CommandStatus.CANCELLED


async def test_result_publishes_the_new_status(
    rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    state = await satellite_state(make_satellite, rt)
    command = await delivered_command(rt, state)

    async with bus_messages(rt, [Channels.COMMAND_UPDATED]) as got:
        await report(rt, state, command, CommandStatus.COMPLETED)
        await report(rt, state, command, CommandStatus.COMPLETED)  # duplicate: no message

    assert [(message["command_id"], message["status"]) for _, message in got] == [
        (command.id, "completed")
    ]


async def test_server_side_statuses_cannot_be_reported_by_a_satellite(
    rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    state = await satellite_state(make_satellite, rt)
    command = await delivered_command(rt, state)

    with pytest.raises(ValidationError):
        await report(rt, state, command, CommandStatus.CANCELLED)


# ---- cancel --------------------------------------------------------------------


async def test_cancelled_pending_command_is_never_delivered(
    rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    state = await satellite_state(make_satellite, rt)
    command = await new_command(rt, state)

    cancelled = await cancel_command(rt, command.id, actor=CLI_ACTOR)
    page = await poll_commands(rt, state, limit=10, wait=0)

    assert cancelled.status is CommandStatus.CANCELLED
    assert page.commands == []
    assert await AuditEntry.filter(action="command.cancelled", object_id=command.id).exists()


async def test_cancelling_an_ended_command_is_an_invalid_transition(
    rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    state = await satellite_state(make_satellite, rt)
    command = await delivered_command(rt, state)
    await report(rt, state, command, CommandStatus.COMPLETED)

    with pytest.raises(Conflict) as raised:
        await cancel_command(rt, command.id, actor=CLI_ACTOR)
    with pytest.raises(NotFound):
        await cancel_command(rt, "missing", actor=CLI_ACTOR)

    assert raised.value.code == "invalid_transition"
    assert (await SatelliteCommand.get(id=command.id)).status is CommandStatus.COMPLETED


# ---- poll edge cases ---------------------------------------------------------------


async def test_poll_limit_and_wait_are_clamped_to_protocol_bounds(
    rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    state = await satellite_state(make_satellite, rt)
    for _ in range(3):
        await new_command(rt, state)

    page = await poll_commands(rt, state, limit=0, wait=-5)

    assert len(page.commands) == 1


async def test_poll_held_when_shutting_down_answers_empty(
    rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    state = await satellite_state(make_satellite, rt)
    held = asyncio.create_task(poll_commands(rt, state, limit=10, wait=30))
    await until_poll_held(rt, state.id)

    rt.shutting_down.set()
    state.wakeup.set()
    page = await asyncio.wait_for(held, timeout=15)  # answered now, not after its 30 s wait
    rt.shutting_down.clear()

    assert page.commands == []


async def test_concurrent_claimers_never_get_the_same_command_within_its_lease(
    rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    # Eight claimers at once, two commands each at most, until the queue is empty: on
    # PostgreSQL they run on separate pooled connections (FOR UPDATE SKIP LOCKED), on
    # SQLite they interleave on the one connection (conditional UPDATEs).
    state = await satellite_state(make_satellite, rt)
    created = {(await new_command(rt, state)).id for _ in range(24)}
    delivered: list[str] = []

    async def claimer() -> None:
        while True:
            page = await poll_commands(rt, state, limit=2, wait=0)
            if not page.commands:
                return
            delivered.extend(item["id"] for item in page.commands)

    await asyncio.gather(*(claimer() for _ in range(8)))

    assert sorted(delivered) == sorted(created)  # each exactly once
    rows = await SatelliteCommand.filter(id__in=list(created))
    assert {(row.status, row.attempts) for row in rows} == {(CommandStatus.ACKNOWLEDGED, 1)}


async def test_two_polls_at_once_each_get_a_command_while_two_are_pending(
    rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    # Found by the lease state machine: a claim on PostgreSQL used to lock one spare
    # row to peek at what was left, so the other poll skipped it and answered empty
    # ("slow", 60 s) while that command stayed pending.
    state = await satellite_state(make_satellite, rt)
    first = await new_command(rt, state, priority=CommandPriority.HIGH)
    second = await new_command(rt, state, priority=CommandPriority.HIGH)

    pages = await asyncio.gather(*(poll_commands(rt, state, limit=1, wait=0) for _ in range(2)))

    assert sorted(item["id"] for page in pages for item in page.commands) == sorted(
        [first.id, second.id])
    assert all(len(page.commands) == 1 for page in pages)


@postgres_only
async def test_a_row_locked_by_another_claimer_is_skipped_not_waited_for(
    rt: Runtime, make_satellite: SatelliteFactory
) -> None:
    # Another instance's claim in progress, on its own connection: the poll takes the
    # next command at once instead of waiting for (or duplicating) the locked one.
    state = await satellite_state(make_satellite, rt)
    first = await new_command(rt, state, priority=CommandPriority.IMMEDIATE)
    second = await new_command(rt, state)
    other = await asyncpg.connect(rt.settings.database_url)
    try:
        async with other.transaction():
            await other.execute(
                'SELECT 1 FROM "satellite_commands" WHERE "id" = $1 FOR UPDATE', first.id)
            page = await poll_commands(rt, state, limit=10, wait=0)
            assert [item["id"] for item in page.commands] == [second.id]
    finally:
        await other.close()
    page = await poll_commands(rt, state, limit=10, wait=0)
    assert [item["id"] for item in page.commands] == [first.id]
