"""Scalars: `DateTime` in the same form as the REST protocol (UTC, ISO 8601, `Z`).

Parse errors are `GraphQLError`s, not `ValueError`s: graphql-core reports those as the
client's mistake (VALIDATION) instead of wrapping an unexpected exception (INTERNAL).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.types.scalar import ScalarDefinition

from app.services.common.clock import iso


def _serialize(value: datetime) -> str:
    return iso(value if value.tzinfo is not None else value.replace(tzinfo=UTC)) or ""


_DATETIME_RULE = "DateTime must be an ISO 8601 string, e.g. 2026-01-02T03:04:05Z"


def _parse(value: Any) -> datetime:
    if not isinstance(value, str):
        raise GraphQLError(_DATETIME_RULE)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise GraphQLError(f"{_DATETIME_RULE} ({error})") from error
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


DateTime: ScalarDefinition = strawberry.scalar(
    name="DateTime", description="Date with time, ISO 8601 in UTC (`…Z`)",
    serialize=_serialize, parse_value=_parse,
)

SCALAR_MAP: dict[object, ScalarDefinition] = {datetime: DateTime}

__all__ = ["SCALAR_MAP"]
