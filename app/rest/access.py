"""Each request observed once: its id, its metrics and its access-log line.

- The id: a sane incoming `X-Request-Id`, else a new one (`app.rest.request_info`);
  returned in the `X-Request-Id` header of every response (errors, streams and
  websockets included), put in error bodies, and carried by every log line written
  while the request is handled (`app.logs.REQUEST_ID`).
- Metrics: `groundstation_http_requests_total` and
  `groundstation_http_request_duration_seconds`, by route template (never the raw
  path), method and status (docs/operations.md §5).
- The access log (`app.access`, docs/operations.md §6): one JSON line per request.
  On the hot satellite routes only a sample of the successful, fast requests is
  logged (`GROUNDSTATION_ACCESS_LOG_SAMPLE_RATE`); errors (status ≥ 400) and slow
  requests (`GROUNDSTATION_ACCESS_LOG_SLOW_MS`, beyond a long poll's own wait) always
  are. Nothing is formatted for a request that is not logged.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import Counter, Histogram

from app.addresses import client_address
from app.logs import REQUEST_ID
from app.rest.context import RUNTIME_KEY
from app.rest.errors import Handler
from app.rest.request_info import REQUEST_ID_HEADER, RequestInfo, new_request_info, request_id_of

log = logging.getLogger("app.access")

# Methods outside this set are one label value: a client cannot add label values at will.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Status of a request whose handler was cancelled (the client or the server went away).
CANCELLED_STATUS = 499


def observe_middleware(sampled_routes: frozenset[str]) -> Middleware:
    """The outermost middleware; `sampled_routes` are the hot route templates."""
    children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        info = new_request_info(request)
        token = REQUEST_ID.set(info.request_id)
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as http_error:
            status = http_error.status
            raise
        except asyncio.CancelledError:
            status = CANCELLED_STATUS
            raise
        finally:
            elapsed = time.perf_counter() - started
            REQUEST_ID.reset(token)
            resource = request.match_info.route.resource
            route = resource.canonical if resource is not None else "unmatched"
            method = request.method if request.method in _METHODS else "other"
            key = (method, route, status)
            child = children.get(key)
            if child is None:
                metrics = request.app[RUNTIME_KEY].metrics
                child = children[key] = (metrics.requests.labels(method, route, str(status)),
                                         metrics.request_duration.labels(method, route))
            child[0].inc()
            child[1].observe(elapsed)
            _access_log(request, info, method, route, status, elapsed, sampled_routes)

    return observe


def _access_log(request: web.Request, info: RequestInfo, method: str, route: str,  # noqa: PLR0913
                status: int, elapsed: float, sampled_routes: frozenset[str]) -> None:
    settings = request.app[RUNTIME_KEY].settings
    if not settings.access_log or not log.isEnabledFor(logging.INFO):
        return
    sample_rate: float | None = None
    if route in sampled_routes and status < 400 and (
            elapsed - info.expected_seconds) * 1000 <= settings.access_log_slow_ms:
        sample_rate = settings.access_log_sample_rate
        if sample_rate < 1.0 and random.random() >= sample_rate:  # noqa: S311 - not a secret
            return
    fields: dict[str, object] = {
        "method": method, "route": route, "status": status,
        "duration_ms": round(elapsed * 1000, 1), "request_id": info.request_id,
        "remote": client_address(request, settings),
    }
    if info.satellite_id is not None:
        fields["satellite_id"] = info.satellite_id
    if info.user_id is not None:
        fields["user_id"] = info.user_id
    if sample_rate is not None:
        fields["sample_rate"] = sample_rate
    log.info("request", extra=fields)


async def add_request_id_header(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: every response carries the request's id."""
    response.headers[REQUEST_ID_HEADER] = request_id_of(request)


__all__ = ["CANCELLED_STATUS", "add_request_id_header", "observe_middleware"]
