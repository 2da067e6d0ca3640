"""Command poll and command result (docs/protocol.md §7, §8)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from app.rest.errors import json_response
from app.rest.request_info import note_caller
from app.rest.satellite_call import SatelliteCall, satellite_route
from app.services.commands.claims import poll_commands
from app.services.commands.results import record_command_result
from app.services.common.rate_limits import SatelliteRateLimits
from app.wire.commands import CommandResultRequest, PollQuery


@satellite_route(query=PollQuery, rate_limit=SatelliteRateLimits.POLL)
async def poll(call: SatelliteCall[PollQuery]) -> web.StreamResponse:
    """`GET /api/satellites/{id}/commands`: claim pending commands (long poll with `wait`)."""
    # A held poll is not slow (access log): it waits up to `wait` by design.
    note_caller(call.request, expected_seconds=min(
        float(call.body.wait), float(call.rt.settings.long_poll_max_seconds)))
    result = await poll_commands(
        call.rt, call.satellite, limit=call.body.limit, wait=call.body.wait
    )
    return json_response(result.to_wire())


@satellite_route(body=CommandResultRequest)
async def command_result(call: SatelliteCall[CommandResultRequest]) -> web.StreamResponse:
    """`POST /api/satellites/{id}/command-result`: never rate limited for a valid key."""
    body = call.body
    outcome = await record_command_result(
        call.rt,
        call.satellite,
        command_id=body.command_id,
        status=body.command_status,
        result=body.result,
        error_message=body.error_text,
    )
    payload: dict[str, Any] = {"success": True, "status": str(outcome.status)}
    if outcome.duplicate:
        payload["message"] = "Result already recorded"
        payload["duplicate"] = True
    elif outcome.late:
        payload["message"] = "Late result recorded"
        payload["late"] = True
    else:
        payload["message"] = "Command result recorded"
    return json_response(payload)
