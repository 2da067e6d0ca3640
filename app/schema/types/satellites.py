"""Satellites, their processes, heartbeats and events as people see them (docs/graphql.md §3).

Live fields (online, last heartbeat, reported status, metrics) come from the
in-memory fleet state when this instance has it, else from the row; relations
come from per-operation DataLoaders, scoped like every read.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import Annotated, Any, cast

import strawberry
from strawberry.scalars import JSON

from app.errors import Forbidden
from app.models import Satellite as SatelliteRow
from app.models import SatelliteEvent as EventRow
from app.models import SatelliteHeartbeat, SatelliteProcess
from app.models import Team as TeamRow
from app.models.enums import CommandStatus, SatelliteType
from app.schema.context import Info, principal_of
from app.schema.enums import SatelliteStatus, satellite_status
from app.schema.loaders import loaded_or_pending
from app.schema.pagination import Connection, checked_first, paginate
from app.schema.types.commands import Command
from app.schema.types.metrics import MetricsBucket, MetricsResolution
from app.schema.types.people import Team
from app.schema.types.telemetry import (
    ClientSession,
    ResourceLimitBreach,
    SatelliteConfigState,
    client_sessions_page,
    limit_breaches_page,
)
from app.services.fleet.state import SatelliteState
from app.services.people import reads


@strawberry.type
class Process:
    id: strawberry.ID
    process_id: str
    server_name: str | None
    installation_id: strawberry.ID | None
    team_id: strawberry.ID | None
    status: str
    health_status: str
    error_message: str | None
    os_pid: int | None
    started_at: datetime | None
    last_reported_at: datetime | None

    @classmethod
    def of(cls, row: SatelliteProcess) -> Process:
        return cls(
            id=strawberry.ID(row.id), process_id=row.process_id, server_name=row.server_name,
            installation_id=row.installation_id,  # type: ignore[arg-type]
            team_id=row.team_id,  # type: ignore[attr-defined]
            status=str(row.status), health_status=str(row.health_status),
            error_message=row.error_message, os_pid=row.os_pid, started_at=row.started_at,
            last_reported_at=row.last_reported_at,
        )


@strawberry.type
class Heartbeat:
    satellite_id: strawberry.ID
    timestamp: datetime
    cpu_usage_percent: float
    memory_usage_mb: float
    disk_usage_percent: float | None
    uptime_seconds: float | None
    process_count: int

    @classmethod
    def of(cls, row: SatelliteHeartbeat) -> Heartbeat:
        return cls(
            satellite_id=strawberry.ID(row.satellite_id),  # type: ignore[attr-defined]
            timestamp=row.timestamp, cpu_usage_percent=row.cpu_usage_percent,
            memory_usage_mb=row.memory_usage_mb, disk_usage_percent=row.disk_usage_percent,
            uptime_seconds=row.uptime_seconds, process_count=row.process_count,
        )


@strawberry.type
class SatelliteEvent:
    id: strawberry.ID
    type: str
    timestamp: datetime
    satellite_id: strawberry.ID
    team_id: strawberry.ID | None
    installation_id: strawberry.ID | None
    data: JSON

    @classmethod
    def of(cls, row: EventRow) -> SatelliteEvent:
        return cls(
            id=strawberry.ID(str(row.id)), type=row.event_type, timestamp=row.occurred_at,
            satellite_id=strawberry.ID(row.satellite_id),  # type: ignore[attr-defined]
            team_id=row.team_id,  # type: ignore[attr-defined]
            installation_id=row.installation_id,  # type: ignore[arg-type]
            data=row.data,
        )


@strawberry.type
class Satellite:
    """Live fields come from this instance's in-memory fleet state when it has the
    satellite (always, for a live one), so a list of satellites needs no row loads;
    `capabilities` and `labels` come from the row, loaded only when asked for."""

    row: strawberry.Private[SatelliteRow | None]
    id: strawberry.ID
    name: str
    satellite_type: SatelliteType
    team_id: strawberry.ID | None
    status: SatelliteStatus
    online: bool
    reported_status: str | None
    last_heartbeat_at: datetime | None
    version: str | None
    latest_metrics: JSON | None

    @classmethod
    def of(cls, row: SatelliteRow, info: Info) -> Satellite:
        live: SatelliteState | None = info.context.rt.fleet.get(row.id)
        if live is not None and live.revision >= row.revision:
            return cls.of_state(live, row)
        metrics: Any = row.latest_metrics
        return cls(
            row=row, id=strawberry.ID(row.id), name=row.name, satellite_type=row.satellite_type,
            team_id=row.team_id,  # type: ignore[attr-defined]
            status=satellite_status(row.status), online=row.online,
            reported_status=None if row.reported_status is None else str(row.reported_status),
            last_heartbeat_at=row.last_heartbeat_at, version=row.version, latest_metrics=metrics,
        )

    @classmethod
    def of_state(cls, state: SatelliteState, row: SatelliteRow | None = None) -> Satellite:
        metrics: Any = state.latest_metrics
        return cls(
            row=row, id=strawberry.ID(state.id), name=state.name,
            satellite_type=state.satellite_type,
            team_id=None if state.team_id is None else strawberry.ID(state.team_id),
            status=satellite_status(state.status), online=state.online,
            reported_status=state.reported_status, last_heartbeat_at=state.last_heartbeat_at,
            version=state.version, latest_metrics=metrics,
        )

    async def _row(self, info: Info) -> SatelliteRow | None:
        if self.row is None:
            self.row = await info.context.loaders.satellite.load(self.id)
        return self.row

    @strawberry.field
    async def capabilities(self, info: Info) -> JSON:
        row = await self._row(info)
        return cast(JSON, [] if row is None else row.capabilities)

    @strawberry.field
    async def labels(self, info: Info) -> JSON:
        row = await self._row(info)
        return cast(JSON, {} if row is None else row.labels)

    # `team` and `processCount` are synchronous when a list prefetched them (the value,
    # at once); otherwise they hand graphql-core the loader's awaitable.
    @strawberry.field
    def team(self, info: Info) -> Team | None:
        if self.team_id is None:
            return None
        row = loaded_or_pending(info.context.loaders.team, self.team_id)
        if row is None or isinstance(row, TeamRow):
            return None if row is None else Team.of(row)
        return cast(Team | None, _team_of(row))

    # Processes the caller may see (a team member: its own team's, also on global satellites).
    @strawberry.field
    def process_count(self, info: Info) -> int:
        return cast(int, loaded_or_pending(info.context.loaders.process_count, self.id))

    @strawberry.field
    async def processes(self, info: Info) -> list[Process]:
        return [Process.of(row) for row in await info.context.loaders.processes.load(self.id)]

    # Heartbeat history; of a global satellite, for administrators only (docs/graphql.md §2).
    @strawberry.field
    async def recent_heartbeats(self, info: Info, first: int | None = 20) -> list[Heartbeat]:
        principal = principal_of(info)
        if self.satellite_type is SatelliteType.GLOBAL and not principal.is_global_admin:
            raise Forbidden("Heartbeat history of global satellites is for administrators")
        rows = await SatelliteHeartbeat.filter(satellite_id=self.id).order_by(
            "-timestamp").limit(checked_first(first))
        return [Heartbeat.of(row) for row in rows]

    # Heartbeat metrics per minute or hour in [from, to), oldest first (at most 10,000
    # buckets); of a global satellite, for administrators only (docs/operations.md §12).
    @strawberry.field
    async def metrics_history(
        self, info: Info, from_: Annotated[datetime, strawberry.argument(name="from")],
        to: datetime, resolution: MetricsResolution = MetricsResolution.MINUTE,
    ) -> list[MetricsBucket]:
        rows = await reads.metrics_history(principal_of(info), self.id, from_, to,
                                           resolution.value)
        return [MetricsBucket.of(row) for row in rows]

    @strawberry.field
    async def commands(
        self, info: Info, status: CommandStatus | None = None, first: int | None = 50,
        after: str | None = None,
    ) -> Connection[Command]:
        query = reads.commands(principal_of(info), satellite_id=self.id, status=status)
        return await paginate(query, first=first, after=after,
                              to_node=lambda rows: [Command.of(row) for row in rows])

    @strawberry.field
    async def events(self, info: Info, first: int | None = 50, after: str | None = None
                     ) -> Connection[SatelliteEvent]:
        query = reads.events(principal_of(info), satellite_id=self.id)
        return await paginate(query, first=first, after=after,
                              to_node=lambda rows: [SatelliteEvent.of(row) for row in rows])

    # Satellite-wide: whoever sees the satellite sees it (global satellites too).
    @strawberry.field
    async def config_state(self, info: Info) -> SatelliteConfigState | None:
        row = await info.context.loaders.config_state.load(self.id)
        return None if row is None else SatelliteConfigState.of(row)

    # Sessions the caller may see (a team member: its own team's, also on global satellites).
    @strawberry.field
    async def client_sessions(
        self, info: Info, first: int | None = 50, after: str | None = None,
        open: bool | None = None,  # noqa: A002 (GraphQL name)
    ) -> Connection[ClientSession]:
        return await client_sessions_page(info, satellite_id=self.id, open=open, first=first,
                                          after=after)

    @strawberry.field
    async def resource_limit_breaches(self, info: Info, first: int | None = 50,
                                      after: str | None = None
                                      ) -> Connection[ResourceLimitBreach]:
        return await limit_breaches_page(info, satellite_id=self.id, first=first, after=after)


async def _team_of(pending: Awaitable[TeamRow | None]) -> Team | None:
    row = await pending
    return None if row is None else Team.of(row)


__all__ = ["Heartbeat", "Process", "Satellite", "SatelliteEvent"]
