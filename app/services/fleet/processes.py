"""Satellite processes as heartbeats report them (docs/protocol.md §6).

Run by the heartbeat flusher, inside its batch: `resolve_attributions()` reads
(before the transaction), `apply_process_batch()` writes (inside it).

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
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.expressions import F

from app.models import McpInstallation, SatelliteProcess
from app.models.enums import ProcessStatus
from app.wire.heartbeat import ProcessReport

STOPPED_AFTER_MISSED = 3
# The installation id closing a config key: 32 lower-case hex characters after the last "-".
_CONFIG_KEY = re.compile(r"-([0-9a-f]{32})$")
_UPDATED_FIELDS = (
    "server_name", "status", "health_status", "performance_metrics", "installation_id",
    "team_id", "missed_heartbeats", "last_reported_at", "updated_at",
)


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


async def apply_process_batch(
    batch: ProcessBatch, attributions: dict[tuple[str, str], Attribution], now: datetime
) -> None:
    """Upsert the reported processes and count a missed heartbeat for every other live one.

    Runs inside the flusher's transaction. A process missed `STOPPED_AFTER_MISSED`
    times in a row becomes `stopped`; being reported again resets the count.
    """
    reported = {process.id: process for process in batch.processes}  # the last entry wins
    process_ids = list(reported)
    existing = {
        row.process_id: row
        for row in await SatelliteProcess.filter(
            satellite_id=batch.satellite_id, process_id__in=process_ids
        )
    } if process_ids else {}
    created: list[SatelliteProcess] = []
    updated: list[SatelliteProcess] = []
    for process_id, process in reported.items():
        attribution = attributions.get((batch.satellite_id, process_id))
        row = existing.get(process_id)
        if row is None:
            row = SatelliteProcess(
                satellite_id=batch.satellite_id, process_id=process_id, started_at=batch.reported_at
            )
            created.append(row)
        else:
            updated.append(row)
        row.server_name = process.server_name
        row.status = process.status
        row.health_status = process.health_status
        row.performance_metrics = process.performance_metrics
        row.installation_id = attribution.installation_id if attribution else None
        row.team_id = attribution.team_id if attribution else None
        row.missed_heartbeats = 0
        row.last_reported_at = batch.reported_at
        row.updated_at = now
    if created:
        await SatelliteProcess.bulk_create(created, batch_size=200)
    if updated:
        await SatelliteProcess.bulk_update(updated, fields=list(_UPDATED_FIELDS), batch_size=200)
    live_elsewhere = SatelliteProcess.filter(satellite_id=batch.satellite_id).exclude(
        status=ProcessStatus.STOPPED
    )
    if process_ids:
        live_elsewhere = live_elsewhere.filter(process_id__not_in=process_ids)
    await live_elsewhere.update(missed_heartbeats=F("missed_heartbeats") + 1)
    await (
        SatelliteProcess.filter(
            satellite_id=batch.satellite_id, missed_heartbeats__gte=STOPPED_AFTER_MISSED
        )
        .exclude(status=ProcessStatus.STOPPED)
        .update(status=ProcessStatus.STOPPED, updated_at=now)
    )


__all__ = [
    "STOPPED_AFTER_MISSED",
    "Attribution",
    "ProcessBatch",
    "apply_process_batch",
    "installation_id_in",
    "resolve_attributions",
]
