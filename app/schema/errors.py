"""Errors as GraphQL clients see them (docs/graphql.md §4), mapped once.

- `AppError`s keep their message and carry `extensions.code` (UNAUTHENTICATED,
  FORBIDDEN, NOT_FOUND, VALIDATION, CONFLICT, RATE_LIMITED), copied by
  graphql-core from `AppError.extensions`.
- Document errors (syntax, unknown fields, depth, aliases) get `VALIDATION`.
- Anything else is a bug: logged with its stack trace here, and the client sees
  only "Internal server error" with code `INTERNAL`.
- Every error carries `extensions.requestId`, the id of the HTTP request (or of the
  websocket's upgrade request) it answers, also in its log line and the access log.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from app.db_errors import database_unavailable, unstorable_value
from app.errors import AppError
from app.logs import current_request_id

log = logging.getLogger("app.graphql")

INTERNAL_MESSAGE = "Internal server error"


def is_expected(error: GraphQLError) -> bool:
    original = error.original_error
    return (original is None or isinstance(original, AppError | GraphQLError)
            or unstorable_value(original) is not None)


def client_error(error: GraphQLError) -> GraphQLError:
    """The error as the client may see it."""
    original = error.original_error
    if isinstance(original, AppError):
        return error
    if original is None or isinstance(original, GraphQLError):
        if not (error.extensions or {}).get("code"):
            error.extensions = {**(error.extensions or {}), "code": "VALIDATION"}
        return error
    known = database_unavailable(original) or unstorable_value(original)
    if known is not None:
        return GraphQLError(known.message, nodes=error.nodes, source=error.source,
                            positions=error.positions, path=error.path,
                            extensions=known.extensions)
    return GraphQLError(INTERNAL_MESSAGE, nodes=error.nodes, source=error.source,
                        positions=error.positions, path=error.path,
                        extensions={"code": "INTERNAL"})


def client_errors(errors: list[GraphQLError]) -> list[GraphQLError]:
    request_id = current_request_id()
    shown = [client_error(error) for error in errors]
    if request_id is not None:
        for error in shown:
            error.extensions = {**(error.extensions or {}), "requestId": request_id}
    return shown


def log_errors(errors: list[GraphQLError], operation: str | None) -> None:
    for error in errors:
        if is_expected(error):
            log.info("graphql error", extra={"op": "graphql", "operation": operation,
                                             "code": (error.extensions or {}).get("code"),
                                             "path": error.path,
                                             "request_id": current_request_id()})
        else:
            log.error("unexpected error in a GraphQL operation",
                      exc_info=error.original_error,
                      extra={"op": "graphql", "operation": operation, "path": error.path,
                             "request_id": current_request_id()})


class ClientErrors(SchemaExtension):
    """Rewrites the result's errors into their client form after each operation."""

    def on_operation(self) -> Iterator[None]:
        yield
        result: Any = self.execution_context.result
        if result is not None and getattr(result, "errors", None):
            result.errors = client_errors(result.errors)


__all__ = ["ClientErrors", "client_error", "client_errors", "is_expected", "log_errors"]
