"""Typed access to the runtime stored on the aiohttp application."""

from __future__ import annotations

from aiohttp import web

from app.services.runtime import Runtime

RUNTIME_KEY: web.AppKey[Runtime] = web.AppKey("runtime", Runtime)


def runtime_of(request: web.Request) -> Runtime:
    return request.app[RUNTIME_KEY]
