"""The command lease state machine, driven by hypothesis (docs/protocol.md §7, §8).

A `RuleBasedStateMachine` enqueues, polls (one poller or several at once),
reports results (first, duplicate, conflicting, for commands never leased, for
commands that are not the satellite's), cancels, moves the clock and runs the two
sweeps, all through the real services against the test's real database (SQLite,
or PostgreSQL with TEST_DATABASE_URL). After every step the database must match a
model of what the protocol promises, and these must hold whatever the model says:

- a command is never handed out again while a lease on it holds, and an ended
  command is never handed out again;
- a poll returns the best priority first (immediate > high > normal > low), then
  the oldest;
- an ended command (completed, failed, cancelled, expired) never changes again,
  except that the satellite's own first terminal report replaces a server-decided
  `expired`/`failed` (docs/protocol.md §8, "late results are kept");
- attempts never exceed the command's max attempts;
- a duplicate result changes nothing at all;
- nothing is lost: at the end of every run, delivering and completing what is
  still open, then letting the clock pass every lease and expiry, leaves every
  command completed, failed, cancelled or expired.

Time: the services read the runtime's clock; the test asks for the `clock` fixture (a
`ManualClock`, which the `rt` fixture builds the runtime on) and moves it by whole
seconds (as tests/rest/test_registration.py does for token expiry), so "less than /
exactly / more than the lease" is exact and the run never sleeps. Background jobs and
the fleet refresh are slowed to once an hour so that only the machine decides when a
sweep runs.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from app.config import Settings
from app.errors import Conflict, NotFound
from app.models import SatelliteCommand
from app.models.enums import CommandPriority, CommandStatus, CommandType
from app.runtime import Runtime
from app.services.commands.claims import PollResult, poll_commands
from app.services.commands.queue import cancel_command, cancel_open_commands, enqueue_command
from app.services.commands.results import ResultOutcome, record_command_result
from app.services.commands.sweeps import LeaseSweep, expire_undelivered, requeue_expired_leases
from app.services.common.actors import CLI_ACTOR
from app.services.common.clock import ManualClock, iso
from app.services.fleet.state import SatelliteState
from tests.fixtures.satellites import SatelliteFactory
from tests.fixtures.server import make_settings

T = TypeVar("T")

LEASE_SECONDS = 60
EXPIRY_SECONDS = 300
MAX_ATTEMPTS = 3

PENDING = CommandStatus.PENDING
ACKNOWLEDGED = CommandStatus.ACKNOWLEDGED
EXECUTING = CommandStatus.EXECUTING
COMPLETED = CommandStatus.COMPLETED
FAILED = CommandStatus.FAILED
EXPIRED = CommandStatus.EXPIRED
CANCELLED = CommandStatus.CANCELLED

IN_FLIGHT = frozenset({ACKNOWLEDGED, EXECUTING})
OPEN = frozenset({PENDING, *IN_FLIGHT})
ENDED = frozenset({COMPLETED, FAILED, CANCELLED, EXPIRED})
SERVER_ENDED = frozenset({EXPIRED, FAILED, CANCELLED})
SATELLITE_TERMINAL = frozenset({COMPLETED, FAILED})

# docs/protocol.md §7, written out here rather than read from the app.
PRIORITY_ORDER = (
    CommandPriority.IMMEDIATE, CommandPriority.HIGH, CommandPriority.NORMAL, CommandPriority.LOW,
)
POLL_MODE = {
    CommandPriority.IMMEDIATE: ("immediate", 2),
    CommandPriority.HIGH: ("normal", 10),
    CommandPriority.NORMAL: ("normal", 30),
    CommandPriority.LOW: ("normal", 30),
}
IDLE_MODE = ("slow", 60)

MACHINE_SETTINGS = hypothesis_settings(
    max_examples=60,
    stateful_step_count=30,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    # Shrink one failure only: each replay talks to the database, so a failing run
    # spends its time making one short reproduction rather than several.
    report_multiple_bugs=False,
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Short lease, and no job or refresh between steps: the machine runs the sweeps."""
    return make_settings(
        tmp_path,
        command_lease_seconds=LEASE_SECONDS,
        command_expiry_seconds=EXPIRY_SECONDS,
        command_max_attempts=MAX_ATTEMPTS,
        jobs_interval_seconds=3600.0,
        state_refresh_seconds=3600.0,
    )


# (type, priority, expires_in_seconds or the default, max_attempts or the default)
CommandSpec = tuple[CommandType, CommandPriority, int | None, int | None]
COMMAND_SPECS: st.SearchStrategy[CommandSpec] = st.tuples(
    st.sampled_from(CommandType),
    st.sampled_from(CommandPriority),
    st.sampled_from([None, LEASE_SECONDS // 2, 2 * LEASE_SECONDS, 20 * LEASE_SECONDS]),
    st.sampled_from([None, 1, 2]),
)


@dataclass(frozen=True)
class Env:
    loop: asyncio.AbstractEventLoop
    rt: Runtime
    make_satellite: SatelliteFactory
    clock: ManualClock  # the runtime's clock; moved only by the machine
    foreign_command_id: str  # a command of another satellite


@dataclass
class Expected:
    """What the protocol says one command's row holds now."""

    id: str
    priority: CommandPriority
    seq: int  # enqueue order (age)
    expires_at: datetime
    max_attempts: int
    status: CommandStatus = PENDING
    attempts: int = 0
    lease_expires_at: datetime | None = None
    reported: CommandStatus | None = None

    @property
    def order(self) -> tuple[int, int]:
        return PRIORITY_ORDER.index(self.priority), self.seq

    @property
    def requeued(self) -> bool:
        return self.status is PENDING and self.attempts > 0

    def on_report(self, reported: CommandStatus, now: datetime) -> ResultOutcome | None:
        """Apply a satellite report (docs/protocol.md §8); None when it is `invalid_transition`."""
        if reported in SATELLITE_TERMINAL:
            if self.reported is not None:
                if reported is self.reported:
                    return ResultOutcome(self.status, duplicate=True)
                return None
            late = self.status in SERVER_ENDED or self.requeued
            if self.status is not CANCELLED:  # cancelled stays; expired/failed are replaced
                self.status = reported
            self.reported = reported
            self.lease_expires_at = None
            return ResultOutcome(self.status, late=late)
        if self.reported is not None:
            return None
        if self.status in SERVER_ENDED:  # kept as a late report; the status stays
            return ResultOutcome(self.status, late=True)
        if self.status is EXECUTING and reported is ACKNOWLEDGED:
            return None
        late = self.requeued
        self.status = reported
        self.lease_expires_at = now + timedelta(seconds=LEASE_SECONDS)  # progress renews
        return ResultOutcome(reported, late=late)


class CommandLeaseMachine(RuleBasedStateMachine):
    env: ClassVar[Env]
    commands = Bundle("commands")

    def __init__(self) -> None:
        super().__init__()
        satellite = self.run(self.env.make_satellite())
        state = self.env.rt.fleet.get(satellite.id)
        assert state is not None
        self.state: SatelliteState = state
        self.expected: dict[str, Expected] = {}
        # Observed, independent of the model: the first ended (status, reported) of
        # each command, and the latest lease seen on it.
        self.ended: dict[str, tuple[CommandStatus, CommandStatus | None]] = {}
        self.leases: dict[str, datetime] = {}

    # ---- plumbing --------------------------------------------------------------

    def run(self, work: Awaitable[T]) -> T:
        """Run on the server's event loop (the machine itself runs in a worker thread)."""

        async def awaited() -> T:
            return await work

        return asyncio.run_coroutine_threadsafe(awaited(), self.env.loop).result(timeout=60)

    @property
    def now(self) -> datetime:
        return self.env.clock.now()

    @property
    def rt(self) -> Runtime:
        return self.env.rt

    def rows(self) -> list[dict[str, Any]]:
        """Every column of every command of this satellite, to compare before/after."""
        return self.run(
            SatelliteCommand.filter(satellite_id=self.state.id).order_by("id").values()
        )

    def deliverable(self) -> list[Expected]:
        """Pending and not expired, best priority first, then oldest."""
        return sorted(
            (command for command in self.expected.values()
             if command.status is PENDING and command.expires_at > self.now),
            key=lambda command: command.order,
        )

    def report_result(
        self, command_id: str, status: CommandStatus, *, result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> ResultOutcome:
        return self.run(record_command_result(
            self.rt, self.state, command_id=command_id, status=status, result=result,
            error_message=error,
        ))

    def take_delivery(self, items: list[dict[str, Any]]) -> None:
        for item in items:
            command_id = item["id"]
            assert command_id in self.expected, f"delivered a command not ours: {command_id}"
            assert command_id not in self.ended, (
                f"ended command {command_id} {self.ended[command_id]} delivered again")
            previous_lease = self.leases.get(command_id)
            assert previous_lease is None or self.now > previous_lease, (
                f"{command_id} delivered again within its lease (until {previous_lease})")
            expected = self.expected[command_id]
            assert expected.status is PENDING, f"{command_id} delivered while {expected.status}"
            assert expected.expires_at > self.now, f"{command_id} delivered after its expiry"
            expected.status = ACKNOWLEDGED
            expected.attempts += 1
            expected.lease_expires_at = self.now + timedelta(seconds=LEASE_SECONDS)
            assert item["attempt"] == expected.attempts <= expected.max_attempts
            assert item["lease_expires_at"] == iso(expected.lease_expires_at)
            self.leases[command_id] = expected.lease_expires_at

    # ---- rules -----------------------------------------------------------------

    @initialize(target=commands, specs=st.lists(COMMAND_SPECS, min_size=1, max_size=6))
    def start_with_a_queue(self, specs: list[CommandSpec]) -> MultipleResults[str]:
        return multiple(*(self.enqueue(*spec) for spec in specs))

    @rule(target=commands, spec=COMMAND_SPECS)
    def enqueue_one(self, spec: CommandSpec) -> str:
        return self.enqueue(*spec)

    def enqueue(
        self, command_type: CommandType, priority: CommandPriority, expires_in: int | None,
        max_attempts: int | None,
    ) -> str:
        command = self.run(enqueue_command(
            self.rt, satellite_id=self.state.id, command_type=command_type, priority=priority,
            payload={"step": len(self.expected)}, expires_in_seconds=expires_in,
            max_attempts=max_attempts, actor=CLI_ACTOR,
        ))
        self.expected[command.id] = Expected(
            command.id, priority, len(self.expected),
            expires_at=self.now + timedelta(seconds=expires_in or EXPIRY_SECONDS),
            max_attempts=max_attempts or MAX_ATTEMPTS,
        )
        return command.id

    @rule(limit=st.integers(1, 4))
    def poll(self, limit: int) -> None:
        deliverable = self.deliverable()
        page: PollResult = self.run(poll_commands(self.rt, self.state, limit=limit, wait=0))
        delivered = [item["id"] for item in page.commands]
        assert delivered == [command.id for command in deliverable[:limit]], (
            "a poll takes the best priority first, then the oldest")
        # From the best of this page and what is still pending after it.
        best = POLL_MODE[deliverable[0].priority] if deliverable else IDLE_MODE
        assert (page.polling_mode, page.next_poll_interval) == best
        self.take_delivery(page.commands)

    @rule(limits=st.lists(st.integers(1, 3), min_size=2, max_size=3))
    def poll_concurrently(self, limits: list[int]) -> None:
        deliverable = self.deliverable()

        async def together() -> list[PollResult]:
            return list(await asyncio.gather(*(
                poll_commands(self.rt, self.state, limit=limit, wait=0) for limit in limits
            )))

        pages = self.run(together())
        delivered = [item["id"] for page in pages for item in page.commands]
        assert len(delivered) == len(set(delivered)), "one command handed to two pollers"
        for page, limit in zip(pages, limits, strict=True):
            assert len(page.commands) <= limit
            orders = [self.expected[item["id"]].order for item in page.commands]
            assert orders == sorted(orders), "each page is best priority first, then oldest"
        # The first poller to claim sees the whole queue and fills its page.
        assert len(delivered) >= min(min(limits), len(deliverable))
        # Pollers that all take from the front leave no better command behind (on
        # PostgreSQL too: a claim locks only the rows it takes, so SKIP LOCKED never
        # hides a deliverable command from a concurrent poller).
        wanted = deliverable[:sum(limits)]
        assert sorted(delivered) == sorted(command.id for command in wanted)
        for page in pages:
            self.take_delivery(page.commands)

    @rule(seconds=st.sampled_from([1, LEASE_SECONDS - 1, LEASE_SECONDS, LEASE_SECONDS + 1,
                                   5 * LEASE_SECONDS // 2]),
          then_run_the_jobs=st.booleans())
    def time_passes(self, seconds: int, then_run_the_jobs: bool) -> None:
        """Less than, exactly, or more than a lease; maybe followed by the periodic jobs."""
        self.advance_time(seconds)
        if then_run_the_jobs:
            self.sweep_leases()
            self.expire_undelivered_commands()

    def advance_time(self, seconds: int) -> None:
        self.env.clock.advance(seconds)

    @rule()
    def sweep_leases(self) -> None:
        requeued = failed = expired = 0
        lapsed = [command for command in self.expected.values()
                  if command.status in IN_FLIGHT
                  and command.lease_expires_at is not None
                  and command.lease_expires_at < self.now]
        sweep = self.run(requeue_expired_leases(self.rt))
        for command in lapsed:
            command.lease_expires_at = None
            if command.expires_at <= self.now:
                command.status, expired = EXPIRED, expired + 1
            elif command.attempts >= command.max_attempts:
                command.status, failed = FAILED, failed + 1
            else:
                command.status, requeued = PENDING, requeued + 1
        assert sweep == LeaseSweep(requeued=requeued, failed=failed, expired=expired)

    @rule()
    def expire_undelivered_commands(self) -> None:
        due = [command for command in self.expected.values()
               if command.status is PENDING and command.expires_at <= self.now]
        count = self.run(expire_undelivered(self.rt))
        for command in due:
            command.status = EXPIRED
        assert count == len(due)

    @rule(command_id=commands,
          status=st.sampled_from([COMPLETED, FAILED, EXECUTING, ACKNOWLEDGED]))
    def report(self, command_id: str, status: CommandStatus) -> None:
        self.check_report(command_id, status)

    @precondition(lambda self: any(command.status in IN_FLIGHT
                                   for command in self.expected.values()))
    @rule(data=st.data(), status=st.sampled_from([COMPLETED, FAILED, EXECUTING]))
    def report_on_leased(self, data: st.DataObject, status: CommandStatus) -> None:
        leased = sorted(command.id for command in self.expected.values()
                        if command.status in IN_FLIGHT)
        self.check_report(data.draw(st.sampled_from(leased), label="command_id"), status)

    @precondition(lambda self: any(command.reported is None and (
        command.status in SERVER_ENDED or command.requeued) for command in self.expected.values()))
    @rule(data=st.data(), status=st.sampled_from([COMPLETED, FAILED, EXECUTING]))
    def report_late(self, data: st.DataObject, status: CommandStatus) -> None:
        """The satellite reports after the server ended or re-queued the command."""
        given_up = sorted(command.id for command in self.expected.values()
                          if command.reported is None
                          and (command.status in SERVER_ENDED or command.requeued))
        self.check_report(data.draw(st.sampled_from(given_up), label="command_id"), status)

    @precondition(lambda self: any(command.status in IN_FLIGHT
                                   for command in self.expected.values()))
    @rule(limit=st.integers(1, 4))
    def satellite_goes_silent(self, limit: int) -> None:
        """No result within the lease: the sweep re-queues, the next poll redelivers."""
        self.advance_time(LEASE_SECONDS + 1)
        self.sweep_leases()
        self.poll(limit)

    @precondition(lambda self: any(command.reported is not None
                                   for command in self.expected.values()))
    @rule(data=st.data())
    def report_again(self, data: st.DataObject) -> None:
        reported = sorted(command.id for command in self.expected.values()
                          if command.reported is not None)
        expected = self.expected[data.draw(st.sampled_from(reported), label="command_id")]
        assert expected.reported is not None
        before = self.rows()

        outcome = self.report_result(expected.id, expected.reported,
                                     result={"again": True}, error="again")

        assert outcome == ResultOutcome(expected.status, duplicate=True)
        assert self.rows() == before, "a duplicate result changed something"

    @rule(which=st.sampled_from(["another satellite's", "unknown"]))
    def report_for_a_command_not_ours(self, which: str) -> None:
        command_id = "0" * 32 if which == "unknown" else self.env.foreign_command_id
        before = self.rows()
        with pytest.raises(NotFound) as raised:
            self.report_result(command_id, COMPLETED)
        assert raised.value.code == "command_not_found"
        assert self.rows() == before

    @rule(command_id=commands)
    def cancel(self, command_id: str) -> None:
        expected = self.expected[command_id]
        if expected.status in OPEN:
            row = self.run(cancel_command(self.rt, command_id, actor=CLI_ACTOR))
            assert row.status is CANCELLED
            expected.status, expected.lease_expires_at = CANCELLED, None
            return
        before = self.rows()
        with pytest.raises(Conflict) as raised:
            self.run(cancel_command(self.rt, command_id, actor=CLI_ACTOR))
        assert raised.value.code == "invalid_transition"
        assert self.rows() == before

    def check_report(self, command_id: str, status: CommandStatus) -> None:
        expected = self.expected[command_id]
        before = self.rows()
        want = expected.on_report(status, self.now)
        if want is None:
            with pytest.raises(Conflict) as raised:
                self.report_result(command_id, status, error="boom")
            assert raised.value.code == "invalid_transition"
            assert self.rows() == before
            return
        outcome = self.report_result(command_id, status, result={"status": str(status)},
                                     error="boom" if status is FAILED else None)
        assert outcome == want
        if want.duplicate:
            assert self.rows() == before, "a duplicate result changed something"

    # ---- invariants ---------------------------------------------------------------

    @invariant()
    def database_matches_the_model(self) -> None:
        rows = self.run(SatelliteCommand.filter(satellite_id=self.state.id))
        by_id = {row.id: row for row in rows}
        assert set(by_id) == set(self.expected), "a command was lost or appeared"
        for command_id, row in by_id.items():
            assert row.attempts <= row.max_attempts, f"{command_id}: attempts over the maximum"
            self.check_ended_stays_ended(command_id, row.status, row.reported_status)
            if row.status in IN_FLIGHT and row.lease_expires_at is not None:
                seen = self.leases.get(command_id)
                self.leases[command_id] = max(seen or row.lease_expires_at, row.lease_expires_at)
            expected = self.expected[command_id]
            assert (row.status, row.attempts, row.reported_status, row.lease_expires_at) == (
                expected.status, expected.attempts, expected.reported,
                expected.lease_expires_at,
            ), command_id
            if expected.status is FAILED and expected.reported is None:  # by the sweep
                assert row.error_message == (
                    f"lease expired after {row.attempts} "
                    f"attempt{'' if row.attempts == 1 else 's'}"
                )

    def check_ended_stays_ended(
        self, command_id: str, status: CommandStatus, reported: CommandStatus | None
    ) -> None:
        first = self.ended.get(command_id)
        if first is None:
            if status in ENDED:
                self.ended[command_id] = (status, reported)
            return
        if (status, reported) == first:
            return
        # The one change allowed: the satellite's own late terminal report is kept; it
        # replaces a server-decided expired/failed, while cancelled stays.
        first_status, first_reported = first
        changed = f"ended command {command_id} changed from {first} to {(status, reported)}"
        assert first_reported is None, changed
        assert reported in SATELLITE_TERMINAL, changed
        if first_status is CANCELLED:
            assert status is CANCELLED, changed
        else:
            assert first_status in (EXPIRED, FAILED), changed
            assert status is reported, changed
        self.ended[command_id] = (status, reported)

    # ---- end of a run: nothing lost --------------------------------------------------

    def teardown(self) -> None:
        try:
            if sys.exc_info()[0] is None:  # only after a run that passed so far
                self.drain()
        finally:
            # Whatever is left must not reach the next run's sweep counts.
            self.run(cancel_open_commands(self.rt, self.state.id, "end of the run"))

    def drain(self) -> None:
        """Deliver and complete what is open, let every lease and expiry pass, sweep."""
        for _ in range(4):
            if all(command.status not in OPEN for command in self.expected.values()):
                break
            self.poll(limit=50)
            for command in list(self.expected.values()):
                if command.status in IN_FLIGHT:
                    self.check_report(command.id, COMPLETED)
            self.database_matches_the_model()
            self.advance_time(LEASE_SECONDS + 1)
            self.sweep_leases()
            self.expire_undelivered_commands()
            self.database_matches_the_model()
        still_open = {command.id: command.status for command in self.expected.values()
                      if command.status not in ENDED}
        assert not still_open, f"commands never ended: {still_open}"


# A passing run takes seconds; a failing one may shrink for up to hypothesis' 5 minutes.
@pytest.mark.timeout(420)
async def test_command_leases_keep_the_protocol_promises(
    rt: Runtime, make_satellite: SatelliteFactory, clock: ManualClock
) -> None:
    other = await make_satellite()
    foreign = await enqueue_command(rt, satellite_id=other.id,
                                    command_type=CommandType.HEALTH_CHECK, actor=CLI_ACTOR)
    # Ended at once, so that the sweeps' counts are the machine's own commands only.
    await cancel_command(rt, foreign.id, actor=CLI_ACTOR)

    class Machine(CommandLeaseMachine):
        env = Env(asyncio.get_running_loop(), rt, make_satellite, clock, foreign.id)

    await asyncio.to_thread(run_state_machine_as_test, Machine, settings=MACHINE_SETTINGS)
