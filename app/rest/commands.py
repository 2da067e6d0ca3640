"""SKELETON (commands helper replaces it)."""
from aiohttp import web


async def poll(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()


async def command_result(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()
