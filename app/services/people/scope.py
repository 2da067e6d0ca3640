"""The one place that decides what a person may see (docs/graphql.md §2).

Every read path — GraphQL root fields, nested fields, subscriptions, SSE —
narrows its query with `scoped(principal, query, kind)` (or, for one object
already loaded or a message on the bus, `can_see`). Nothing else filters by
team for visibility, so the role table lives here once:

| kind | global_admin | member of team T (either role) | global_user |
|---|---|---|---|
| satellites | all | global satellites + T's | global satellites |
| team-owned rows (1) | all | T's rows | none |
| heartbeat history | all | T's team satellites (global ones: aggregated only) | none |
| registration tokens, audit | all | T's, team admins only | none |
| teams | all | T | none |
| users | all | themselves | themselves |

(1) commands, processes, events, usage, logs, tools, installations.

Rows of a global satellite carry the team of the installation they concern
(commands, processes, events), so a member of T sees only T's part of it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, TypeVar

from tortoise.expressions import Q
from tortoise.models import Model
from tortoise.queryset import QuerySet

from app.models.enums import SatelliteType
from app.services.people.principals import Principal

M = TypeVar("M", bound=Model)


class Kind(StrEnum):
    SATELLITES = "satellites"
    TEAM_OWNED = "team_owned"  # rows with a team_id column
    HEARTBEATS = "heartbeats"  # rows with a satellite relation
    TEAM_ADMINISTERED = "team_administered"  # tokens, audit entries
    TEAMS = "teams"
    USERS = "users"


def _team_filter(team_ids: frozenset[str], column: str = "team_id") -> Q | None:
    if not team_ids:
        return None
    condition: dict[str, Any] = {f"{column}__in": sorted(team_ids)}
    return Q(**condition)


def visibility(principal: Principal, kind: Kind) -> Q | None:
    """The filter for `kind`: `Q()` for everything, None for nothing."""
    if principal.is_global_admin:
        return Q()
    teams = principal.team_ids
    match kind:
        case Kind.SATELLITES:
            own = _team_filter(teams)
            everyone = Q(satellite_type=SatelliteType.GLOBAL)
            return everyone if own is None else everyone | own
        case Kind.TEAM_OWNED:
            return _team_filter(teams)
        case Kind.HEARTBEATS:
            own = _team_filter(teams, "satellite__team_id")
            return None if own is None else own & Q(satellite__satellite_type=SatelliteType.TEAM)
        case Kind.TEAM_ADMINISTERED:
            return _team_filter(principal.admin_team_ids)
        case Kind.TEAMS:
            return _team_filter(teams, "id")
        case Kind.USERS:
            return Q(id=principal.user_id)
    raise ValueError(f"unknown kind {kind!r}")  # pragma: no cover


def scoped(principal: Principal, query: QuerySet[M], kind: Kind) -> QuerySet[M]:
    """`query` narrowed to what `principal` may see of `kind`."""
    condition = visibility(principal, kind)
    # tortoise renders an empty IN as `1=0`: the query then matches nothing.
    return query.filter(condition if condition is not None else Q(pk__in=[]))


def can_see(principal: Principal, kind: Kind, row: Any) -> bool:
    """The same rule for one loaded row or one bus message (attributes or keys)."""
    if principal.is_global_admin:
        return True

    def value(name: str) -> Any:
        return row.get(name) if isinstance(row, dict) else getattr(row, name, None)

    team_id = value("team_id")
    match kind:
        case Kind.SATELLITES:
            kind_value = value("satellite_type")
            return str(getattr(kind_value, "value", kind_value)) == SatelliteType.GLOBAL.value or (
                team_id in principal.team_ids
            )
        case Kind.TEAM_OWNED:
            return team_id is not None and team_id in principal.team_ids
        case Kind.HEARTBEATS:
            kind_value = value("satellite_type")
            return team_id in principal.team_ids and str(
                getattr(kind_value, "value", kind_value)
            ) == SatelliteType.TEAM.value
        case Kind.TEAM_ADMINISTERED:
            return team_id is not None and team_id in principal.admin_team_ids
        case Kind.TEAMS:
            return value("id") in principal.team_ids
        case Kind.USERS:
            return bool(value("id") == principal.user_id)
    raise ValueError(f"unknown kind {kind!r}")  # pragma: no cover


__all__ = ["Kind", "can_see", "scoped", "visibility"]
