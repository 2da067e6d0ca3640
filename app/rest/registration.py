"""SKELETON (auth helper replaces it)."""
from aiohttp import web


async def register(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()
