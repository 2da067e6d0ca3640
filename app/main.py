"""The aiohttp application factory."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from aiohttp import web

from app.config import Settings
from app.db import close_database, open_database
from app.jobs.runner import start_jobs
from app.rest.context import RUNTIME_KEY
from app.rest.cors import add_cors_headers, cors_middleware
from app.rest.errors import Handler, error_middleware
from app.rest.routes import add_routes
from app.services.runtime import Runtime, build_runtime


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as http_error:
        status = http_error.status
        raise
    finally:
        resource = request.match_info.route.resource
        template = resource.canonical if resource is not None else "unmatched"
        request.app[RUNTIME_KEY].metrics.requests.labels(
            request.method, template, str(status)
        ).inc()


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    rt = app[RUNTIME_KEY]
    await open_database(rt.settings)
    try:
        await rt.bus.start()
        await rt.fleet.load()
        rt.started_monotonic = time.monotonic()
        rt.tasks.start(rt.fleet.refresh_loop(rt.shutting_down), name="fleet-refresh")
        rt.tasks.start(rt.fleet.follow_bus(), name="fleet-bus")
        rt.tasks.start(rt.heartbeats.run(rt.shutting_down), name="heartbeat-flusher")
        rt.tasks.start(rt.session_cache.follow(rt.bus, rt.shutting_down), name="session-cache")
        start_jobs(rt)
        yield
    finally:
        # Background work stops by itself once it sees the event (and the bus
        # closing ends subscriptions); the final flush then writes what is left.
        rt.shutting_down.set()
        await rt.bus.close()
        await rt.tasks.stop(rt.settings.shutdown_timeout_seconds)
        await rt.limits.close()
        await rt.heartbeats.flush()
        await close_database()


async def _answer_held_polls(app: web.Application) -> None:
    """Shutdown step one: held long polls return (empty) so in-flight requests can finish."""
    rt = app[RUNTIME_KEY]
    rt.shutting_down.set()
    for state in rt.fleet.all():
        state.wakeup.set()
    await asyncio.sleep(0)


def create_app(settings: Settings, runtime: Runtime | None = None) -> web.Application:
    """Build the app; the database opens (and migrates) when the app starts."""
    app = web.Application(
        middlewares=[metrics_middleware, cors_middleware, error_middleware],
        client_max_size=max(settings.max_body_bytes, settings.max_event_body_bytes) + 4096,
    )
    app[RUNTIME_KEY] = runtime or build_runtime(settings)
    add_routes(app)
    app.on_response_prepare.append(add_cors_headers)
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_answer_held_polls)
    return app
