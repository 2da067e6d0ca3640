"""Typed access to the runtime stored on the aiohttp application."""

from __future__ import annotations

from aiohttp import web

from app.services.context import Services

RUNTIME_KEY: web.AppKey[Services] = web.AppKey("runtime", Services)


def runtime_of(request: web.Request) -> Services:
    return request.app[RUNTIME_KEY]
