"""Parsing and validation of every GraphQL operation: token limit, cost guard, standard rules.

Replaces strawberry's parser cache and validation step: one cached parse per
query text (at most `max_tokens` tokens) and one cached validation per
document, so a repeated document costs two dictionary lookups, and a document
over the cost limits never reaches the standard rules (some of which are
superlinear). Runs identically for HTTP and websocket operations.

A document that does not parse is left to strawberry's own parse step, which
turns the syntax error into an ordinary error result (an exception raised from
this hook would bypass the other extensions, `ClientErrors` included).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import lru_cache

from graphql import ASTValidationRule, DocumentNode, GraphQLError, GraphQLSchema, parse
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from app.schema.cost import CostLimits, check_cost

CACHE_SIZE = 256


@lru_cache(maxsize=CACHE_SIZE)
def _parse(query: str, max_tokens: int) -> DocumentNode:
    return parse(query, max_tokens=max_tokens)


@lru_cache(maxsize=CACHE_SIZE)
def _validate(schema: GraphQLSchema, document: DocumentNode, limits: CostLimits,
              rules: tuple[type[ASTValidationRule], ...]) -> list[GraphQLError]:
    return check_cost(document, limits) or validate_document(schema, document, rules)


class CostGuard(SchemaExtension):
    def __init__(self, limits: CostLimits, max_tokens: int) -> None:
        self._limits = limits
        self._max_tokens = max_tokens

    def on_operation(self) -> Iterator[None]:
        # graphql-core's parser stops at the limit: a flood costs at most this many tokens.
        self.execution_context.parse_options["max_tokens"] = self._max_tokens
        yield

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is None and context.query:
            # On a syntax error strawberry parses again and reports it (module docstring).
            with contextlib.suppress(GraphQLError):
                context.graphql_document = _parse(context.query, self._max_tokens)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is not None and context.pre_execution_errors is None:
            context.pre_execution_errors = _validate(
                context.schema._schema, context.graphql_document, self._limits,
                tuple(context.validation_rules),
            )
        yield


__all__ = ["CostGuard"]
