"""`POST /api/satellites/{id}/heartbeat` (docs/protocol.md §6): never rate limited."""

from __future__ import annotations

from aiohttp import web

from app.rest.errors import json_response
from app.rest.satellite_call import SatelliteCall, satellite_route
from app.services.common.clock import iso
from app.services.fleet.heartbeats import record_heartbeat
from app.wire.heartbeat import HeartbeatRequest


@satellite_route(body=HeartbeatRequest)
async def heartbeat(call: SatelliteCall[HeartbeatRequest]) -> web.StreamResponse:
    ack = await record_heartbeat(call.rt, call.satellite, call.body, call.address)
    return json_response({
        "success": True,
        "message": "heartbeat recorded",
        "server_time": iso(ack.server_time),
        "heartbeat_interval": ack.heartbeat_interval,
    })
