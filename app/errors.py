"""One exception hierarchy with stable codes.

Mapped once to HTTP (`app/rest/errors.py`) and once to GraphQL (`extensions.code`).
`code` is the wire text satellites read (`error` field, docs/protocol.md §1);
`graphql_code` is the coarse GraphQL category (docs/graphql.md §4).
"""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    status: int = 500
    code: str = "internal_error"
    graphql_code: str = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details
        self.headers = headers or {}

    @property
    def extensions(self) -> dict[str, Any]:
        """GraphQL error extensions (graphql-core copies them from the original error)."""
        extensions: dict[str, Any] = {"code": self.graphql_code, "reason": self.code}
        if self.details:
            extensions["details"] = self.details
        return extensions


class ValidationError(AppError):
    status = 400
    code = "validation_failed"
    graphql_code = "VALIDATION"


class PayloadTooLarge(AppError):
    status = 413
    code = "validation_failed: body too large"
    graphql_code = "VALIDATION"


class Unauthenticated(AppError):
    status = 401
    code = "unauthorized"
    graphql_code = "UNAUTHENTICATED"


class Forbidden(AppError):
    status = 403
    code = "forbidden"
    graphql_code = "FORBIDDEN"


class NotFound(AppError):
    status = 404
    code = "not_found"
    graphql_code = "NOT_FOUND"


class Conflict(AppError):
    status = 409
    code = "conflict"
    graphql_code = "CONFLICT"


class RateLimited(AppError):
    status = 429
    code = "rate limit exceeded"
    graphql_code = "RATE_LIMITED"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, retry_after))})
        self.retry_after = max(1, retry_after)


class Unavailable(AppError):
    status = 503
    code = "service_unavailable"
    graphql_code = "UNAVAILABLE"
