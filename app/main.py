"""The aiohttp application factory."""

from __future__ import annotations

import asyncio
import logging
import platform
import time
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from app.config import Settings
from app.db import close_database, open_database
from app.jobs.runner import start_jobs
from app.redis_url import safe_url
from app.rest.access import add_request_id_header, observe_middleware
from app.rest.context import RUNTIME_KEY
from app.rest.cors import add_cors_headers, cors_middleware
from app.rest.errors import error_middleware
from app.rest.routes import SAMPLED_ROUTES, add_routes
from app.runtime import Runtime, build_runtime
from app.version import VERSION

log = logging.getLogger(__name__)

@dataclass(slots=True)
class _ShutdownClock:
    """time.monotonic() when shutdown began (for the duration in its last log line)."""

    started: float | None = None


_SHUTDOWN_CLOCK = web.AppKey("shutdown_clock", _ShutdownClock)
# False for `serve --no-migrate`: start only on an up-to-date schema (docs/operations.md §8).
_MIGRATE_ON_START = web.AppKey("migrate_on_start", bool)


def log_serving(app: web.Application, url: str) -> None:
    """The start-up line, once the socket is bound (docs/operations.md §6). The database
    URL is shown without its password and query (which may hold one)."""
    rt = app[RUNTIME_KEY]
    log.info("serving", extra={
        "op": "startup", "url": url, "version": VERSION,
        "python": platform.python_version(),
        "database": safe_url(rt.settings.database_url.split("?", 1)[0]),
        "bus": "redis" if rt.settings.redis_url else "in-process",
        "instance_id": rt.instance_id,
    })


def _warn_if_debug(settings: Settings) -> None:
    if settings.debug:
        log.warning("GROUNDSTATION_DEBUG is ignored: GraphiQL is served at /graphql to "
                    "signed-in people in every mode; remove the setting",
                    extra={"op": "startup", "setting": "GROUNDSTATION_DEBUG"})


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    rt = app[RUNTIME_KEY]
    await open_database(rt.settings, migrate=app[_MIGRATE_ON_START])
    _warn_if_debug(rt.settings)
    try:
        await rt.bus.start()
        await rt.fleet.load()
        rt.started_monotonic = rt.clock.monotonic()
        rt.tasks.start(rt.fleet.refresh_loop(rt.shutting_down), name="fleet-refresh")
        rt.tasks.start(rt.fleet.follow_bus(), name="fleet-bus")
        rt.tasks.start(rt.heartbeats.run(rt.shutting_down), name="heartbeat-flusher")
        rt.tasks.start(rt.session_cache.follow(rt.bus, rt.shutting_down), name="session-cache")
        start_jobs(rt)
        yield
    finally:
        # Background work stops by itself once it sees the event (and the bus
        # closing ends subscriptions); the final flush then writes what is left.
        # Every step is bounded: whatever clients or the database do, the process
        # stops within the shutdown timeout plus at most about eight seconds
        # (docs/operations.md §9).
        rt.shutting_down.set()
        deadline = _shutdown_deadline(app)
        await _bounded("closing the bus", rt.bus.close(), STEP_SECONDS / 4)
        await rt.tasks.stop(max(0.0, deadline - time.monotonic()))
        await _bounded("closing the limit store", rt.limits.close(), STEP_SECONDS / 4)
        if not await _bounded("final heartbeat flush", rt.heartbeats.flush(), STEP_SECONDS):
            log.error("shutdown: buffered heartbeats were not written",
                      extra={"op": "shutdown", "history_rows": rt.heartbeats.pending_history,
                             "satellites": rt.heartbeats.pending_satellites})
        await _bounded("closing the database", close_database(), STEP_SECONDS / 2)
        started = app[_SHUTDOWN_CLOCK].started
        if started is not None:
            log.info("shutdown complete", extra={
                "op": "shutdown", "instance_id": rt.instance_id,
                "duration_ms": round((time.monotonic() - started) * 1000)})


# The final steps after the shutdown timeout (flush, close) get this long each.
STEP_SECONDS = 2.0


def _shutdown_deadline(app: web.Application) -> float:
    """When the shutdown timeout ends (counted from the first shutdown step)."""
    rt = app[RUNTIME_KEY]
    return rt.shutdown_deadline or time.monotonic() + rt.settings.shutdown_timeout_seconds


async def _bounded(step: str, work: Coroutine[Any, Any, object], seconds: float) -> bool:
    """Run one shutdown step for at most `seconds`; False (logged) when it failed or hung.

    Not `wait_for`: that waits for the cancelled step to finish, and a step stuck on
    a locked database does not finish. A step still running is abandoned."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
        task.add_done_callback(_retrieve)
        log.error("shutdown: a step did not finish in time; going on without it",
                  extra={"op": "shutdown", "step": step, "seconds": seconds})
        return False
    if task.exception() is not None:
        log.error("shutdown: a step failed; going on without it", exc_info=task.exception(),
                  extra={"op": "shutdown", "step": step})
        return False
    return task.result() is not False


def _retrieve(task: asyncio.Future[object]) -> None:
    if not task.cancelled():
        task.exception()


async def _shutdown_begins(app: web.Application) -> None:
    """The first shutdown step: says what is about to be closed."""
    rt = app[RUNTIME_KEY]
    app[_SHUTDOWN_CLOCK].started = time.monotonic()
    held = rt.metrics.registry.get_sample_value("groundstation_held_polls") or 0
    log.info("shutdown begins", extra={
        "op": "shutdown", "instance_id": rt.instance_id, "held_polls": int(held),
        "live_connections": len(rt.live)})


async def _answer_held_polls(app: web.Application) -> None:
    """Shutdown step one: held long polls return (empty) so in-flight requests can finish."""
    rt = app[RUNTIME_KEY]
    rt.shutdown_deadline = time.monotonic() + rt.settings.shutdown_timeout_seconds
    rt.shutting_down.set()
    for state in rt.fleet.all():
        state.wakeup.set()
    await asyncio.sleep(0)


def create_app(settings: Settings, runtime: Runtime | None = None, *,
               migrate: bool = True) -> web.Application:
    """Build the app; the database opens (and migrates, unless `migrate` is False) when
    the app starts."""
    app = web.Application(
        middlewares=[observe_middleware(SAMPLED_ROUTES), cors_middleware, error_middleware],
        client_max_size=max(settings.max_body_bytes, settings.max_event_body_bytes) + 4096,
    )
    app[RUNTIME_KEY] = runtime or build_runtime(settings)
    app[_SHUTDOWN_CLOCK] = _ShutdownClock()
    app[_MIGRATE_ON_START] = migrate
    app.on_shutdown.append(_shutdown_begins)
    add_routes(app)
    app.on_response_prepare.append(add_request_id_header)
    app.on_response_prepare.append(add_cors_headers)
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_answer_held_polls)
    return app
