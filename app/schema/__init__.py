"""The GraphQL schema (design.md §4), built once at import.

Cost guards run before any resolver: depth ≤ 10, aliases ≤ 30; the parser and
validation caches make repeated documents cheap (stack-notes: ~5× throughput).
"""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from app.schema.errors import ClientErrors, log_errors
from app.schema.query import Mutation, Query, Subscription
from app.schema.scalars import SCALAR_MAP

MAX_DEPTH = 10
MAX_ALIASES = 30


class GroundstationSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError],
                       execution_context: ExecutionContext | None = None) -> None:
        operation = execution_context.operation_name if execution_context else None
        log_errors(errors, operation)


# The limiters' rules are built once: the validation cache is keyed by the rule classes,
# and a limiter made per request brings new classes (every request would validate anew).
_COST_RULES = [
    *QueryDepthLimiter(max_depth=MAX_DEPTH).validation_rules,
    *MaxAliasesLimiter(max_alias_count=MAX_ALIASES).validation_rules,
]


def _extensions() -> list[Any]:
    return [
        lambda: AddValidationRules(_COST_RULES),
        lambda: ParserCache(maxsize=256),
        lambda: ValidationCache(maxsize=256),
        ClientErrors,
    ]


schema = GroundstationSchema(
    query=Query, mutation=Mutation, subscription=Subscription, extensions=_extensions(),
    config=StrawberryConfig(scalar_map=SCALAR_MAP),
)

__all__ = ["MAX_ALIASES", "MAX_DEPTH", "schema"]
