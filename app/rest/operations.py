"""Unauthenticated operational routes: health, registration method, metrics."""

from __future__ import annotations

import asyncio
import hmac

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.db import database_reachable
from app.db_errors import DATABASE_UNREACHABLE, RETRY_AFTER_SECONDS
from app.errors import Unauthenticated
from app.rest.context import runtime_of
from app.rest.errors import error_body, json_response
from app.version import VERSION

REGISTRATION_PREFIXES = ["deploystack_satellite_global_", "deploystack_satellite_team_"]
# A scrape does not wait longer than this for the database's answer (then it is "down").
DATABASE_CHECK_SECONDS = 2.0


async def health(request: web.Request) -> web.Response:
    if await database_reachable():
        return json_response({"status": "ok", "version": VERSION})
    # The same code (and Retry-After) as every other 503 for an unreachable database.
    body = error_body(request, "database_unavailable", DATABASE_UNREACHABLE)
    return json_response({**body, "status": "unavailable", "version": VERSION}, status=503,
                         headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


async def registration_status(request: web.Request) -> web.Response:
    return json_response(
        {"registration_method": "token_based", "token_required": True,
         "supported_prefixes": REGISTRATION_PREFIXES}
    )


async def metrics(request: web.Request) -> web.Response:
    rt = runtime_of(request)
    token = rt.settings.metrics_token
    if token:
        presented = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(presented.encode(), token.encode()):
            raise Unauthenticated("A valid metrics token is required")
    rt.metrics.online_satellites.set(sum(1 for state in rt.fleet.all() if state.online))
    try:
        up = await asyncio.wait_for(database_reachable(), DATABASE_CHECK_SECONDS)
    except TimeoutError:
        up = False
    rt.metrics.database_up.set(1 if up else 0)
    body = generate_latest(rt.metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
