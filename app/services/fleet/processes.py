"""Satellite processes as heartbeats report them (docs/protocol.md §6).

Run by the heartbeat flusher, inside its batch: `resolve_attributions()` reads
(before the transaction), `ProcessWriter.write()` writes (inside it).

Rules:
- a reported process is upserted by `(satellite_id, process_id)`; unknown
  status/health values arrive as `unknown` (repaired by the wire model);
  `performance_metrics` are kept;
- its installation and team come from matching the process id or server name
  against the satellite's config keys `{server_slug}-{team_slug}-{installation_id}`;
  when nothing matches, the team stays empty (never a fake "global" team,
  docs/protocol.md §12 defect 7);
- a process absent from `STOPPED_AFTER_MISSED` consecutive heartbeats that
  carry a `processes` list is marked `stopped` (retention prunes it later).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from app.models import McpInstallation
from app.models.ids import new_id
from app.services.common.storage import encode_json
from app.services.fleet.flush_sql import (
    STOPPED_AFTER_MISSED,
    count_missed,
    reported_key,
    stored_time,
    upsert_processes,
)
from app.wire.heartbeat import ProcessReport

# The installation id closing a config key: 32 lower-case hex characters after the last "-".
_CONFIG_KEY = re.compile(r"-([0-9a-f]{32})$")


@dataclass(frozen=True, slots=True)
class ProcessBatch:
    """The `processes` list of one heartbeat, with what resolution needs of its satellite."""

    satellite_id: str
    satellite_team_id: str | None
    reported_at: datetime
    processes: tuple[ProcessReport, ...]


@dataclass(frozen=True, slots=True)
class Attribution:
    installation_id: str
    team_id: str


@dataclass(frozen=True, slots=True)
class _Installation:
    id: str
    team_id: str
    pinned_satellite_id: str | None
    config_key: str


def installation_id_in(name: str | None) -> str | None:
    """The installation id a config key ends with, if `name` has that shape."""
    if not name:
        return None
    match = _CONFIG_KEY.search(name)
    return match.group(1) if match else None


async def resolve_attributions(
    batches: Iterable[ProcessBatch],
) -> dict[tuple[str, str], Attribution]:
    """Map `(satellite_id, process_id)` to the installation and team it runs, where one matches.

    One query for all batches. A match needs the full config key (server slug,
    team slug, installation id) and the installation to be in the satellite's
    scope: its own team for a team satellite, and not pinned to another satellite.
    """
    batches = list(batches)
    wanted = {
        installation_id
        for batch in batches
        for process in batch.processes
        for installation_id in (installation_id_in(process.id),
                                installation_id_in(process.server_name))
        if installation_id is not None
    }
    if not wanted:
        return {}
    rows = await McpInstallation.filter(id__in=wanted).values(
        "id", "team_id", "pinned_satellite_id", "server__slug", "team__slug"
    )
    installations = {str(row["id"]): _installation(row) for row in rows}
    found: dict[tuple[str, str], Attribution] = {}
    for batch in batches:
        for process in batch.processes:
            attribution = _match(process, batch, installations)
            if attribution is not None:
                found[(batch.satellite_id, process.id)] = attribution
    return found


def _installation(row: dict[str, Any]) -> _Installation:
    installation_id = str(row["id"])
    pinned = row["pinned_satellite_id"]
    return _Installation(
        id=installation_id,
        team_id=str(row["team_id"]),
        pinned_satellite_id=None if pinned is None else str(pinned),
        config_key=f"{row['server__slug']}-{row['team__slug']}-{installation_id}",
    )


def _match(
    process: ProcessReport, batch: ProcessBatch, installations: dict[str, _Installation]
) -> Attribution | None:
    for name in (process.id, process.server_name):
        installation = installations.get(installation_id_in(name) or "")
        if installation is None or name != installation.config_key:
            continue
        if batch.satellite_team_id is not None and installation.team_id != batch.satellite_team_id:
            continue  # never attribute another team's installation to a team satellite
        if installation.pinned_satellite_id not in (None, batch.satellite_id):
            continue
        return Attribution(installation.id, installation.team_id)
    return None


_Written = tuple[tuple[Any, ...], float]  # (what was written, when: monotonic seconds)


class ProcessWriter:
    """Writes the reported processes of a flush, set-based (`flush_sql`), and remembers
    what it wrote so an unchanged report costs no write.

    A process whose report (names, states, metrics, attribution) equals what this
    writer last wrote, less than `REFRESH_SECONDS` ago, is skipped: its row already
    says so, with a missed count of 0. Its `last_reported_at` is therefore exact to
    `REFRESH_SECONDS`. Whatever else changes a process row (lifecycle events, another
    instance's flush) must `forget()` the satellite, or waits for the refresh.
    What a flush writes is remembered only after its transaction committed.
    """

    REFRESH_SECONDS = 300.0
    _MAX_SATELLITES = 200_000

    def __init__(self, monotonic: Callable[[], float]) -> None:
        self._monotonic = monotonic
        # satellite id -> process id -> what was last written for it
        self._written: dict[str, dict[str, _Written]] = {}

    def forget(self, satellite_id: str) -> None:
        """Forget what was written for a satellite's processes (their rows changed)."""
        self._written.pop(satellite_id, None)

    async def write(
        self, conn: BaseDBAsyncClient, batches: Sequence[ProcessBatch],
        attributions: dict[tuple[str, str], Attribution], now: datetime,
    ) -> Callable[[], None]:
        """Write `batches` inside the caller's transaction; returns the function that
        remembers what was written, to be called once the transaction committed.

        A satellite's batches are applied in order, one round per heartbeat, so
        misses count per heartbeat even when several wait in one flush.
        """
        rounds: list[list[ProcessBatch]] = []
        seen: dict[str, int] = {}
        for batch in batches:
            index = seen.get(batch.satellite_id, 0)
            seen[batch.satellite_id] = index + 1
            if index == len(rounds):
                rounds.append([])
            rounds[index].append(batch)
        # satellite id -> its processes as they will be after this flush
        after: dict[str, dict[str, _Written]] = {}
        clock = self._monotonic()
        stored_now = stored_time(now)
        for round_batches in rounds:
            rows: list[tuple[Any, ...]] = []
            reported: list[str] = []
            for batch in round_batches:
                before = after.get(batch.satellite_id, self._written.get(batch.satellite_id, {}))
                known: dict[str, _Written] = {}
                reported_at = stored_time(batch.reported_at)
                for process_id, process in {p.id: p for p in batch.processes}.items():
                    reported.append(reported_key(batch.satellite_id, process_id))
                    attribution = attributions.get((batch.satellite_id, process_id))
                    written = _fingerprint(process, attribution)
                    previous = before.get(process_id)
                    if (previous is not None and previous[0] == written
                            and clock - previous[1] < self.REFRESH_SECONDS):
                        known[process_id] = previous
                        continue
                    rows.append((
                        new_id(), batch.satellite_id, process_id, process.server_name,
                        process.status.value, process.health_status.value, written[3],
                        attribution.installation_id if attribution else None,
                        attribution.team_id if attribution else None,
                        0, reported_at, reported_at, stored_now, stored_now,
                    ))
                    known[process_id] = (written, clock)
                # Processes it did not report are counted missed below: their rows change,
                # so they are forgotten (`known` holds only the reported ones).
                after[batch.satellite_id] = known
            if rows:
                await upsert_processes(conn, rows)
            await count_missed(conn, [batch.satellite_id for batch in round_batches],
                               reported, stored_now)
        return lambda: self._remember(after)

    def _remember(self, after: dict[str, dict[str, _Written]]) -> None:
        self._written.update(after)
        if len(self._written) > self._MAX_SATELLITES:
            self._written.clear()  # only costs one write per process


def _fingerprint(process: ProcessReport, attribution: Attribution | None) -> tuple[Any, ...]:
    """What a row says about a reported process (metrics as their stored JSON)."""
    return (process.server_name, process.status, process.health_status,
            None if process.performance_metrics is None
            else encode_json(process.performance_metrics),
            attribution)


__all__ = [
    "STOPPED_AFTER_MISSED",
    "Attribution",
    "ProcessBatch",
    "ProcessWriter",
    "installation_id_in",
    "resolve_attributions",
]
