"""SKELETON (heartbeat/config helper replaces it)."""
from aiohttp import web


async def satellite_config(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()
