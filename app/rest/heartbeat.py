"""SKELETON (heartbeat helper replaces it)."""
from aiohttp import web


async def heartbeat(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()
