"""Every REST route, registered in one place."""

from __future__ import annotations

from aiohttp import web

from app.rest import commands, config, events, heartbeat, operations, registration, streams
from app.rest.graphql import add_graphql_route
from app.rest.openapi import OPENAPI_PATH, openapi_json
from app.rest.pages import add_page_routes

SATELLITE = "/api/satellites/{satellite_id}"
# The satellites' hot routes, whose access-log lines are sampled (docs/operations.md §6).
SAMPLED_ROUTES = frozenset(f"{SATELLITE}/{name}" for name in
                           ("heartbeat", "commands", "events", "config"))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/health", operations.health)
    app.router.add_get("/metrics", operations.metrics)
    app.router.add_get(OPENAPI_PATH, openapi_json)
    app.router.add_get("/api/satellites/register/status", operations.registration_status)
    app.router.add_post("/api/satellites/register", registration.register)
    app.router.add_post(f"{SATELLITE}/heartbeat", heartbeat.heartbeat)
    app.router.add_get(f"{SATELLITE}/commands", commands.poll)
    app.router.add_post(f"{SATELLITE}/command-result", commands.command_result)
    app.router.add_get(f"{SATELLITE}/config", config.satellite_config)
    app.router.add_post(f"{SATELLITE}/events", events.ingest)
    app.router.add_get("/api/stream/events", streams.events)
    app.router.add_get("/api/stream/satellites", streams.satellites)
    app.router.add_get("/api/stream/alerts", streams.alerts)
    streams.add_live_lifecycle(app)
    add_graphql_route(app)
    add_page_routes(app)
