"""`POST /api/satellites/register` (docs/protocol.md §4): the token first, then the body."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from app.addresses import client_address
from app.rest.bodies import read_json_object
from app.rest.context import runtime_of
from app.rest.errors import json_response
from app.rest.satellite_call import parse_model
from app.services.satellites.registration import RegistrationResult, register_satellite
from app.wire.registration import RegistrationRequest


async def register(request: web.Request) -> web.StreamResponse:
    rt = runtime_of(request)

    async def read_body() -> RegistrationRequest:
        data = await read_json_object(request, rt.settings.max_body_bytes)
        return parse_model(RegistrationRequest, data)

    result = await register_satellite(
        rt,
        authorization=request.headers.get("Authorization"),
        body=read_body,
        address=client_address(request, rt.settings),
    )
    return json_response(registration_payload(result))


def registration_payload(result: RegistrationResult) -> dict[str, Any]:
    """Exactly the fields of docs/protocol.md §4; the API key appears here and nowhere else."""
    return {
        "success": True,
        "satellite": {
            "id": result.satellite_id,
            "name": result.name,
            "satellite_type": result.satellite_type.value,
            "team_id": result.team_id,
            "status": result.status.value,
            "api_key": result.api_key,
        },
        "message": result.message,
    }
