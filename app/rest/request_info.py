"""What the access log and error bodies know about the request being handled.

`app.rest.access` creates one `RequestInfo` per request (its id: a sane incoming
`X-Request-Id`, else a new one); handlers add who made the request once they know
(`note_satellite`, `note_user`). See docs/operations.md §6.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from aiohttp import web

REQUEST_ID_HEADER = "X-Request-Id"
# An incoming id is kept when it is short and made of characters safe in a header,
# a log line and JSON; anything else is replaced by one of ours.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")


@dataclass(slots=True)
class RequestInfo:
    request_id: str
    satellite_id: str | None = None
    user_id: str | None = None
    # Seconds the request may take by design (a long poll's wait): not "slow".
    expected_seconds: float = 0.0


REQUEST_INFO = web.RequestKey("request_info", RequestInfo)


def new_request_info(request: web.Request) -> RequestInfo:
    incoming = request.headers.get(REQUEST_ID_HEADER)
    if incoming is None or _SANE_REQUEST_ID.fullmatch(incoming) is None:
        incoming = uuid.uuid4().hex
    info = RequestInfo(incoming)
    request[REQUEST_INFO] = info
    return info


def request_id_of(request: web.Request) -> str:
    """The request's id (made now if the request never met the middleware)."""
    info = request.get(REQUEST_INFO)
    return (info or new_request_info(request)).request_id


def note_caller(request: web.Request, *, satellite_id: str | None = None,
                user_id: str | None = None, expected_seconds: float | None = None) -> None:
    """Tell the access log who made the request (once authenticated), and how long it
    may take by design."""
    info = request.get(REQUEST_INFO)
    if info is None:
        return
    if satellite_id is not None:
        info.satellite_id = satellite_id
    if user_id is not None:
        info.user_id = user_id
    if expected_seconds is not None:
        info.expected_seconds = expected_seconds


__all__ = [
    "REQUEST_ID_HEADER",
    "REQUEST_INFO",
    "RequestInfo",
    "new_request_info",
    "note_caller",
    "request_id_of",
]
