"""Per-operation DataLoaders: each relation is one query per operation, whatever the
number of parents (docs/architecture.md §7: the dashboard query costs a fixed number of queries).

Loaders that return rows people see go through `scope.scoped`, like every read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from functools import cached_property
from typing import Any, Protocol, TypeVar

from strawberry.dataloader import DataLoader
from tortoise.models import Model

from app.errors import Unauthenticated
from app.models import (
    McpInstallationRevision,
    McpServer,
    McpTool,
    SatelliteConfigState,
    SatelliteProcess,
    Team,
    TeamMembership,
    User,
)
from app.models import Satellite as SatelliteRow
from app.services.mcp.preview import ConfigPreview, config_previews
from app.services.people import reads
from app.services.people.principals import Principal
from app.services.people.scope import Kind, scoped
from app.services.telemetry import reads as reports


class Caller(Protocol):
    """Who the loaders load for (the GraphQL context; a protocol, so no import back)."""

    principal: Principal | None


M = TypeVar("M", bound=Model)
K = TypeVar("K")
V = TypeVar("V")


def loaded_or_pending(loader: DataLoader[K, V], key: K) -> V | Awaitable[V]:
    """The value at once when the loader already has it (a list resolver prefetched the
    page), else the loader's awaitable. A resolver returning this stays synchronous in
    the common case: graphql-core then completes a whole page of nodes without a task
    per node, and still awaits an awaitable when one comes back."""
    future = loader.cache_map.get(key)
    if future is not None and future.done() and not future.cancelled() \
            and future.exception() is None:
        return future.result()
    return loader.load(key)


def _by_id(model: type[M]) -> Callable[[list[str]], Any]:
    async def load(ids: list[str]) -> Sequence[M | None]:
        rows = {row.pk: row for row in await model.filter(pk__in=set(ids))}
        return [rows.get(key) for key in ids]

    return load


def _grouped(keys: Iterable[str], rows: Iterable[tuple[str, Any]]) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = {key: [] for key in keys}
    for key, value in rows:
        grouped.setdefault(key, []).append(value)
    return grouped


class Loaders:
    """Built lazily by `Context.loaders`; every loader caches for one operation."""

    # Each loader is made on first use: an operation pays only for the ones it needs.

    def __init__(self, context: Caller) -> None:
        self._context = context

    @cached_property
    def satellite(self) -> DataLoader[str, SatelliteRow | None]:
        return DataLoader(load_fn=_by_id(SatelliteRow))

    @cached_property
    def team(self) -> DataLoader[str, Team | None]:
        return DataLoader(load_fn=_by_id(Team))

    @cached_property
    def user(self) -> DataLoader[str, User | None]:
        return DataLoader(load_fn=_by_id(User))

    @cached_property
    def server(self) -> DataLoader[str, McpServer | None]:
        return DataLoader(load_fn=_by_id(McpServer))

    @cached_property
    def process_count(self) -> DataLoader[str, int]:
        return DataLoader(load_fn=self._process_counts)

    @cached_property
    def processes(self) -> DataLoader[str, list[SatelliteProcess]]:
        return DataLoader(load_fn=self._processes)

    @cached_property
    def team_members(self) -> DataLoader[str, list[TeamMembership]]:
        return DataLoader(load_fn=self._team_members)

    @cached_property
    def config_state(self) -> DataLoader[str, SatelliteConfigState | None]:
        return DataLoader(load_fn=self._config_states)

    @cached_property
    def mcp(self) -> McpLoaders:
        return McpLoaders(self._context)

    def _visible_processes(self, satellite_ids: list[str]) -> Any:
        principal = self._context.principal
        query = SatelliteProcess.filter(satellite_id__in=set(satellite_ids))
        if principal is None:
            return query.filter(pk__in=[])
        return scoped(principal, query, Kind.TEAM_OWNED)

    async def _process_counts(self, satellite_ids: list[str]) -> list[int]:
        """Visible processes per satellite (a team member counts only its team's)."""
        counted = Counter(
            await self._visible_processes(satellite_ids).values_list("satellite_id", flat=True)
        )
        return [counted.get(key, 0) for key in satellite_ids]

    async def _processes(self, satellite_ids: list[str]) -> list[list[SatelliteProcess]]:
        rows = await self._visible_processes(satellite_ids).order_by("process_id")
        grouped = _grouped(satellite_ids,
                           ((row.satellite_id, row) for row in rows))
        return [grouped[key] for key in satellite_ids]

    async def _team_members(self, team_ids: list[str]) -> list[list[TeamMembership]]:
        """Memberships (with their users) of teams the caller administers."""
        principal = self._context.principal
        if principal is None:  # pragma: no cover - the fields require a login
            return [[] for _ in team_ids]
        rows = await reads.team_members(principal, team_ids)
        grouped = _grouped(team_ids, (
            (row.team_id, row) for row in rows))  # type: ignore[attr-defined]
        return [grouped[key] for key in team_ids]


    async def _config_states(self, satellite_ids: list[str]
                             ) -> list[SatelliteConfigState | None]:
        """Config states of the visible satellites among `satellite_ids`."""
        principal = self._context.principal
        if principal is None:  # pragma: no cover - the fields require a login
            return [None for _ in satellite_ids]
        rows = {row.satellite_id: row  # type: ignore[attr-defined]
                for row in await reports.config_states(principal, satellite_ids)}
        return [rows.get(key) for key in satellite_ids]


class McpLoaders:
    """Installation relations (`info.context.loaders.mcp`): one query each per operation.

    Installations reach these loaders only after a scoped read; the rows they
    load are scoped again all the same (tools by team, revisions through their
    installation).
    """

    def __init__(self, context: Caller) -> None:
        self._context = context

    @cached_property
    def preview(self) -> DataLoader[str, ConfigPreview]:
        return DataLoader(load_fn=self._previews)

    @cached_property
    def revisions(self) -> DataLoader[str, list[McpInstallationRevision]]:
        return DataLoader(load_fn=self._revisions)

    @cached_property
    def tools(self) -> DataLoader[str, list[McpTool]]:
        return DataLoader(load_fn=self._tools)

    def _principal(self) -> Principal:
        principal = self._context.principal
        if principal is None:  # pragma: no cover - the fields require a login
            raise Unauthenticated("Log in first", code="unauthenticated")
        return principal

    async def _previews(self, installation_ids: list[str]) -> list[ConfigPreview]:
        previews = await config_previews(installation_ids)
        return [previews.get(key, ConfigPreview()) for key in installation_ids]

    async def _revisions(self, installation_ids: list[str]
                         ) -> list[list[McpInstallationRevision]]:
        rows = await reads.installation_revisions(self._principal(), installation_ids)
        grouped = _grouped(installation_ids, (
            (row.installation_id, row) for row in rows))  # type: ignore[attr-defined]
        return [grouped[key] for key in installation_ids]

    async def _tools(self, installation_ids: list[str]) -> list[list[McpTool]]:
        rows = await reads.installation_tools(self._principal(), installation_ids)
        grouped = _grouped(installation_ids, (
            (row.installation_id, row) for row in rows))  # type: ignore[attr-defined]
        return [grouped[key] for key in installation_ids]


__all__ = ["Loaders", "McpLoaders"]
