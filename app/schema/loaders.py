"""Per-operation DataLoaders: each relation is one query per operation, whatever the
number of parents (design.md §4: the dashboard query costs a fixed number of queries).

Loaders that return rows people see go through `scope.scoped`, like every read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from strawberry.dataloader import DataLoader
from tortoise.models import Model

from app.models import McpServer, SatelliteProcess, Team, User
from app.services.scope import Kind, scoped

if TYPE_CHECKING:
    from app.schema.context import Context

M = TypeVar("M", bound=Model)


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

    def __init__(self, context: Context) -> None:
        self._context = context
        self.team = DataLoader[str, Team | None](load_fn=_by_id(Team))
        self.user = DataLoader[str, User | None](load_fn=_by_id(User))
        self.server = DataLoader[str, McpServer | None](load_fn=_by_id(McpServer))
        self.process_count = DataLoader[str, int](load_fn=self._process_counts)
        self.processes = DataLoader[str, list[SatelliteProcess]](load_fn=self._processes)

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


__all__ = ["Loaders"]
