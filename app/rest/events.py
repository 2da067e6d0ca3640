"""`POST /api/satellites/{id}/events` (docs/protocol.md §10): batched events, partial success."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from app.rest.errors import json_response
from app.rest.satellite_call import SatelliteCall, satellite_route
from app.services.telemetry.ingest import ingest_events
from app.wire.events import EventsBatch


@satellite_route(
    body=EventsBatch, rate_limit="events",
    max_body_bytes=lambda rt: rt.settings.max_event_body_bytes,
)
async def ingest(call: SatelliteCall[EventsBatch]) -> web.StreamResponse:
    result = await ingest_events(call.rt, call.satellite, call.body.events)
    payload: dict[str, Any] = {
        "success": True,
        "processed": result.processed,
        "failed": len(result.failures),
        "event_ids": result.event_ids,
    }
    if result.failures:
        payload["failures"] = [failure.as_dict() for failure in result.failures]
    return json_response(payload)
