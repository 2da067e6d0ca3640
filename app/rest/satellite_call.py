"""The ordered checks of every `/api/satellites/{id}/…` route (docs/protocol.md "Checks").

authentication (401) → satellite disabled (401) → IP allow-list (403) →
binding (403, also for an id that does not exist) → rate limit (429) →
body size (413) → body validation (400). Handlers receive a `SatelliteCall`
with the authenticated satellite and the validated body; they never parse
headers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import pydantic
from aiohttp import web

from app.addresses import client_address
from app.errors import Forbidden, Unauthenticated, ValidationError
from app.models.enums import SatelliteStatus
from app.rest.bodies import read_json_object
from app.rest.context import runtime_of
from app.rest.request_info import note_caller
from app.services.context import Services
from app.services.fleet.authentication import authenticate_satellite
from app.services.fleet.state import SatelliteState

BodyT = TypeVar("BodyT", bound=pydantic.BaseModel)


@dataclass(frozen=True, slots=True)
class SatelliteCall(Generic[BodyT]):
    request: web.Request
    rt: Services
    satellite: SatelliteState
    address: str
    body: BodyT


SatelliteHandler = Callable[[SatelliteCall[Any]], Awaitable[web.StreamResponse]]


def validation_error(error: pydantic.ValidationError, what: str = "body") -> ValidationError:
    details = [
        {"field": ".".join(str(part) for part in item["loc"]) or what, "message": item["msg"]}
        for item in error.errors(include_url=False, include_input=False)
    ][:50]
    return ValidationError(f"Invalid request {what}: see details", details=details)


def parse_model(model: type[BodyT], data: Any, what: str = "body") -> BodyT:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as error:
        raise validation_error(error, what) from error


def satellite_route(
    *,
    body: type[pydantic.BaseModel] | None = None,
    query: type[pydantic.BaseModel] | None = None,
    rate_limit: str | None = None,
    max_body_bytes: Callable[[Services], int] | None = None,
) -> Callable[[SatelliteHandler], Callable[[web.Request], Awaitable[web.StreamResponse]]]:
    """Wrap a handler with the ordered satellite checks and body/query validation."""

    def decorate(
        handler: SatelliteHandler,
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def wrapper(request: web.Request) -> web.StreamResponse:
            rt = runtime_of(request)
            address = client_address(request, rt.settings)
            satellite = await authenticate_satellite(
                rt, request.headers.get("Authorization"), address
            )
            note_caller(request, satellite_id=satellite.id)
            if satellite.status is SatelliteStatus.DISABLED:
                raise Unauthenticated("This satellite is disabled")
            if not satellite.address_allowed(address):
                raise Forbidden(
                    "Requests for this satellite are not allowed from this address",
                    code="ip_not_allowed",
                )
            if request.match_info.get("satellite_id") != satellite.id:
                raise Forbidden("API key does not belong to this satellite")
            if rate_limit is not None:
                await rt.rate_limits.check(satellite.id, rate_limit)
            parsed: Any = None
            if body is not None:
                limit = (max_body_bytes or _default_limit)(rt)
                parsed = parse_model(body, await read_json_object(request, limit))
            elif query is not None:
                parsed = parse_model(query, _query_dict(request.query), "query")
            return await handler(SatelliteCall(request, rt, satellite, address, parsed))

        wrapper.__name__ = handler.__name__
        wrapper.__doc__ = handler.__doc__
        return wrapper

    return decorate


def _default_limit(rt: Services) -> int:
    return rt.settings.max_body_bytes


def _query_dict(query: Mapping[str, str]) -> dict[str, str]:
    return {key: query[key] for key in query}
