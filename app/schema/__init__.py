"""The GraphQL schema (docs/graphql.md), built once at import.

Every document passes the cost guard (`app.schema.cost`: tokens, depth, aliases,
fields, field comparisons; linear in the document) before the standard
validation rules run, over HTTP and websockets alike; the parser and validation
caches make repeated documents cheap.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from app.schema.cost import CostLimits
from app.schema.errors import ClientErrors, log_errors
from app.schema.fanout import FanoutExecutor
from app.schema.guard import CostGuard
from app.schema.query import Mutation, Query, Subscription
from app.schema.scalars import SCALAR_MAP

COST_LIMITS = CostLimits()
MAX_TOKENS = 5_000
MAX_DEPTH = COST_LIMITS.max_depth
MAX_ALIASES = COST_LIMITS.max_aliases


class GroundstationSchema(strawberry.Schema):
    async def execute(  # noqa: PLR0913 - strawberry's signature
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """Queries and mutations only: subscriptions run over the websocket (`stream`), so
        one sent over HTTP is refused (400) instead of resolving to a generator."""
        allowed = set(allowed_operation_types or (OperationType.QUERY, OperationType.MUTATION))
        allowed.discard(OperationType.SUBSCRIPTION)
        return await super().execute(query, variable_values, context_value, root_value,
                                     operation_name, allowed, operation_extensions)

    def process_errors(self, errors: list[GraphQLError],
                       execution_context: ExecutionContext | None = None) -> None:
        operation = execution_context.operation_name if execution_context else None
        log_errors(errors, operation)


def _extensions() -> list[Any]:
    # CostGuard parses (token limit) and validates (cost first), both cached.
    return [lambda: CostGuard(COST_LIMITS, MAX_TOKENS), ClientErrors]


schema = GroundstationSchema(
    query=Query, mutation=Mutation, subscription=Subscription, extensions=_extensions(),
    config=StrawberryConfig(scalar_map=SCALAR_MAP), execution_context_class=FanoutExecutor,
)

__all__ = ["COST_LIMITS", "MAX_ALIASES", "MAX_DEPTH", "MAX_TOKENS", "schema"]
