"""`GET /api/satellites/{id}/config` (docs/protocol.md §9): canonical body, ETag, 304."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from app.rest.satellite_call import SatelliteCall, satellite_route
from app.services.mcp.satellite_config import render_satellite_config


def etag_matches(if_none_match: str | None, version: str) -> bool:
    """True when `If-None-Match` names this version (weak or strong, in a list, or `*`)."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*":
            return True
        tag = tag.removeprefix("W/").strip()
        if tag.strip('"') == version:
            return True
    return False


@satellite_route(rate_limit="poll")
async def satellite_config(call: SatelliteCall[Any]) -> web.StreamResponse:
    rendered = await render_satellite_config(call.rt, call.satellite)
    headers = {"ETag": f'"{rendered.version}"', "Cache-Control": "no-cache"}
    if etag_matches(call.request.headers.get("If-None-Match"), rendered.version):
        return web.Response(status=304, headers=headers)
    return web.Response(body=rendered.body, content_type="application/json", headers=headers)
