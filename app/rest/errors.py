"""The one mapping from domain errors to HTTP (docs/protocol.md §1 error bodies)."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from app.db_errors import database_unavailable, unstorable_value
from app.errors import AppError
from app.rest.request_info import request_id_of

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> web.Response:
    return web.Response(
        body=json.dumps(payload, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def error_body(request: web.Request, code: str, message: str) -> dict[str, Any]:
    """Every REST error body: `success`, `error` (the stable code), `message`, and the
    request's id (docs/protocol.md §1)."""
    return {"success": False, "error": code, "message": message,
            "request_id": request_id_of(request)}


def error_response(request: web.Request, error: AppError) -> web.Response:
    body = error_body(request, error.code, error.message)
    if error.details:
        body["details"] = error.details
    return json_response(body, status=error.status, headers=error.headers)


_HTTP_CODES = {
    404: ("not_found", "No route matches this path"),
    405: ("method_not_allowed", "This method is not allowed on this path"),
    413: ("validation_failed: body too large", "Request body too large"),
}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except AppError as error:
        return error_response(request, error)
    except web.HTTPException as http_error:
        if http_error.status in _HTTP_CODES and http_error.content_type != "application/json":
            code, message = _HTTP_CODES[http_error.status]
            return json_response(error_body(request, code, message), status=http_error.status)
        raise
    except Exception as error:
        known = classify(request, error, "http")
        if known is not None:
            return error_response(request, known)
        log.exception("unhandled error", extra={"op": "http", "path": request.path,
                                                "request_id": request_id_of(request)})
        return json_response(error_body(request, "internal_error", "Internal server error"),
                             status=500)


def client_went_away(request: web.Request) -> bool:
    """The client closed its connection: whatever failed, nobody is waiting for an answer."""
    transport = request.transport
    return transport is None or transport.is_closing()


class ClientGone(AppError):
    """Answer to a client that has hung up (never delivered; 499 in the access log)."""

    status = 499
    code = "client_closed_request"


def classify(request: web.Request, error: Exception, op: str) -> AppError | None:
    """The client-facing error for an exception a handler did not expect, logged once;
    None for a bug (the caller logs it with its stack trace and answers 500).

    Order matters: a reset by the client looks like a broken database connection."""
    context = {"op": op, "path": request.path, "error": type(error).__name__,
               "request_id": request_id_of(request)}
    if client_went_away(request):
        log.info("client closed the connection before the answer", extra=context)
        return ClientGone("The client closed the connection")
    unavailable = database_unavailable(error)
    if unavailable is not None:
        log.error("database unreachable", extra=context)
        return unavailable
    unstorable = unstorable_value(error)
    if unstorable is not None:
        log.info("value the database cannot hold", extra=context)
    return unstorable
