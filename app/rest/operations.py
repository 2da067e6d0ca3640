"""Unauthenticated operational routes: health, registration method, metrics."""

from __future__ import annotations

import hmac

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.db import database_reachable
from app.errors import Unauthenticated
from app.rest.context import runtime_of
from app.rest.errors import json_response

REGISTRATION_PREFIXES = ["deploystack_satellite_global_", "deploystack_satellite_team_"]


async def health(request: web.Request) -> web.Response:
    if await database_reachable():
        return json_response({"status": "ok"})
    return json_response(
        {"success": False, "status": "unavailable", "error": "database_unreachable",
         "message": "The database is not reachable"},
        status=503,
    )


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
    body = generate_latest(rt.metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
