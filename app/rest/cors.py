"""CORS for the people-facing routes: off unless `CORS_ORIGINS` lists origins
(docs/graphql.md §1).

Only `/graphql` and `/api/stream/*` are offered cross-origin (satellites never
need CORS). A listed origin gets credentials (the session cookie); any other
origin gets no CORS headers at all, so the browser refuses the response.
"""

from __future__ import annotations

from aiohttp import web

from app.rest.context import RUNTIME_KEY
from app.rest.errors import Handler

_PATHS = ("/graphql", "/api/stream/")
_PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Last-Event-Id",
    "Access-Control-Max-Age": "600",
}


def _allowed_origin(request: web.Request) -> str | None:
    origins = request.app[RUNTIME_KEY].settings.cors_origins
    origin = request.headers.get("Origin")
    if not origins or origin is None or not request.path.startswith(_PATHS):
        return None
    # Explicit origins only: a wildcard with credentials would let any site act as the user.
    return origin if origin in origins else None


def _cors_headers(origin: str) -> dict[str, str]:
    return {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true",
            "Vary": "Origin"}


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answers preflights for allowed origins; other requests pass through."""
    origin = _allowed_origin(request)
    if (origin is not None and request.method == "OPTIONS"
            and "Access-Control-Request-Method" in request.headers):
        return web.Response(status=204, headers={**_cors_headers(origin), **_PREFLIGHT_HEADERS})
    return await handler(request)


async def add_cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: runs before headers go out, streams (SSE) included."""
    origin = _allowed_origin(request)
    if origin is not None:
        response.headers.update(_cors_headers(origin))


__all__ = ["add_cors_headers", "cors_middleware"]
