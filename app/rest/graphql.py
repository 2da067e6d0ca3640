"""`/graphql`: strawberry's aiohttp view, with our authentication at the edge.

Queries and mutations over POST (JSON only: no form posts, so no form CSRF;
no GET), subscriptions over `graphql-transport-ws` only (the legacy protocol is
off) on the same path. The caller comes from the session cookie or
`Authorization: Bearer <session token>`; a websocket may instead send
`{"authToken": …}` in `connection_init`, and is refused (4403) without a valid
session. Websocket origins are limited to `ALLOWED_ORIGINS` (default: same
origin). GraphiQL is served only with `GROUNDSTATION_DEBUG` on.

Bodies are read whole up to `GROUNDSTATION_GRAPHQL_MAX_BODY_BYTES` and parsed by
the one strict JSON reader (`app.rest.bodies`); every answer of this path, a
refused body included, has the GraphQL shape `{"errors": [{"message", "extensions":
{"code"}}]}`.

Each accepted websocket is a live connection of its session (`services.live`):
logout or a password change closes it (4403), shutdown too (1001), a membership
change replaces the caller its subscriptions filter with.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

from aiohttp import web
from cross_web import AiohttpHTTPRequestAdapter, HTTPException
from strawberry.aiohttp.views import GraphQLView
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from app.addresses import client_address
from app.auth.bearer import bearer_credential
from app.errors import AppError, ValidationError
from app.rest.bodies import parse_json, parse_json_object, read_body
from app.rest.context import RUNTIME_KEY, runtime_of
from app.rest.errors import classify, json_response
from app.rest.pages import page
from app.rest.request_info import note_caller, request_id_of
from app.schema import schema
from app.schema.context import SESSION_COOKIE, Context, set_session_cookie
from app.schema.errors import INTERNAL_MESSAGE
from app.services.context import Services
from app.services.live.connections import SHUTDOWN, LiveConnection
from app.services.people.principals import Principal
from app.services.people.sessions import authenticate_session

log = logging.getLogger(__name__)

MAX_SUBSCRIPTIONS_PER_CONNECTION = 20
SESSION_ENDED_CLOSE_CODE = 4403
GOING_AWAY_CLOSE_CODE = 1001
_LIVE_CONNECTION = web.RequestKey("live_connection", LiveConnection)
# Strawberry's refusals by HTTP status: a GET without a query (GraphiQL off) finds nothing.
_HTTP_REFUSAL_CODES = {404: "NOT_FOUND"}


def session_token(request: web.Request) -> str | None:
    """The session token of a request: the Bearer header wins over the cookie."""
    return (bearer_credential(request.headers.get("Authorization"))
            or request.cookies.get(SESSION_COOKIE) or None)


def graphql_error_response(request: web.Request, status: int, message: str, code: str,  # noqa: PLR0913
                           reason: str | None = None,
                           headers: dict[str, str] | None = None) -> web.Response:
    """An answer of `/graphql` that is not an execution result, in the GraphQL error shape
    (with the request's id, as execution errors have it: `app.schema.errors`)."""
    extensions = {"code": code, **({"reason": reason} if reason else {}),
                  "requestId": request_id_of(request)}
    return json_response({"errors": [{"message": message, "extensions": extensions}]},
                         status=status, headers=headers)


class _BoundedRequestAdapter(AiohttpHTTPRequestAdapter):
    """Reads the body through the one bounded reader (413 beyond the GraphQL limit)."""

    async def get_body(self) -> bytes:
        if self._body is None:
            limit = runtime_of(self.request).settings.graphql_max_body_bytes
            self._body = await read_body(self.request, limit)
        return self._body


class GroundstationGraphQLView(GraphQLView[Context, None]):
    request_adapter_class = _BoundedRequestAdapter

    def __init__(self, rt: Services) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql",  # our own page from local assets (render_graphql_ide)
            allow_queries_via_get=False,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(seconds=10),
            max_subscriptions_per_connection=MAX_SUBSCRIPTIONS_PER_CONNECTION,
            allowed_origins=rt.settings.allowed_origins,
        )
        self.rt = rt

    async def get_context(
        self, request: web.Request, response: web.Response | web.WebSocketResponse
    ) -> Context:
        address = client_address(request, self.rt.settings)
        token = session_token(request)
        principal = await authenticate_session(self.rt, token, address=address)
        if principal is not None:
            note_caller(request, user_id=principal.user_id)
            if (token is not None and isinstance(response, web.Response)
                    and token == request.cookies.get(SESSION_COOKIE)):
                set_session_cookie(self.rt, request, response, token)  # slides with use
        return Context(self.rt, request, response, address, principal)

    def should_render_graphql_ide(self, request: Any) -> bool:
        """Browsers only (`Accept: text/html`): a script's GET is not a page request."""
        return bool(request.method == "GET" and "text/html" in request.headers.get("accept", ""))

    async def render_graphql_ide(self, request: web.Request) -> web.Response:
        """GraphiQL for a signed-in person; otherwise the sign-in page first."""
        principal = await authenticate_session(
            self.rt, session_token(request), address=client_address(request, self.rt.settings))
        if principal is None:
            return web.Response(status=303, headers={"Location": "/login?next=/graphql"})
        return page("graphiql")

    async def on_ws_connect(self, context: Context) -> Any:
        params = context.connection_params or {}
        token = params.get("authToken") if isinstance(params, dict) else None
        if isinstance(token, str) and token:
            context.principal = await authenticate_session(
                self.rt, token, address=context.address
            )
        if context.principal is None or self.rt.shutting_down.is_set():
            raise ConnectionRejectionError({"code": "UNAUTHENTICATED",
                                            "message": "Log in first"})
        note_caller(context.request, user_id=context.principal.user_id)
        context.request[_LIVE_CONNECTION] = self._live_connection(context, context.principal)
        return await super().on_ws_connect(context)

    def _live_connection(self, context: Context, principal: Principal) -> LiveConnection:
        socket = context.response

        async def close(reason: str) -> None:
            code = GOING_AWAY_CLOSE_CODE if reason == SHUTDOWN else SESSION_ENDED_CLOSE_CODE
            if isinstance(socket, web.WebSocketResponse) and not socket.closed:
                await socket.close(code=code, message=reason.encode()[:120])

        def replace(new: Principal) -> None:
            context.principal = new

        return self.rt.live.open(principal, on_end=close, on_principal=replace)

    async def reject_websocket(self, request: web.Request) -> web.Response:
        """A websocket from an origin not in `ALLOWED_ORIGINS` (403, GraphQL-shaped)."""
        return graphql_error_response(
            request, 403, "Websockets from this origin are not allowed (ALLOWED_ORIGINS)",
            "FORBIDDEN")

    async def create_websocket_response(
        self, request: web.Request, subprotocol: str | None
    ) -> web.WebSocketResponse:
        """As strawberry's, with messages bounded like HTTP bodies (aiohttp allows 4 MiB)."""
        socket = web.WebSocketResponse(
            protocols=[subprotocol] if subprotocol else [],
            max_msg_size=self.rt.settings.graphql_max_body_bytes,
        )
        await socket.prepare(request)
        return socket

    def parse_json(self, data: str | bytes) -> Any:
        """An HTTP body: a JSON object, or a `ValidationError` saying what is wrong."""
        return parse_json_object(data, "GraphQL request body")

    def decode_json(self, data: str | bytes) -> object:
        """A websocket message: the same strict reader (strawberry closes the socket, 4400,
        on a `JSONDecodeError`)."""
        try:
            return parse_json(data, "Message")
        except ValidationError as error:
            raise json.JSONDecodeError(error.message, "", 0) from error

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self.run(request=request)
        except AppError as error:
            return graphql_error_response(request, error.status, error.message,
                                          error.graphql_code, error.code, error.headers)
        except HTTPException as error:  # strawberry's own refusals (method, content type, …)
            return graphql_error_response(request, error.status_code, error.reason,
                                          _HTTP_REFUSAL_CODES.get(error.status_code, "VALIDATION"))
        except Exception as error:
            known = classify(request, error, "graphql")
            if known is None:
                log.exception("unhandled error", extra={"op": "graphql", "path": request.path,
                                                        "request_id": request_id_of(request)})
                return graphql_error_response(request, 500, INTERNAL_MESSAGE, "INTERNAL")
            return graphql_error_response(request, known.status, known.message,
                                          known.graphql_code, known.code, known.headers)
        finally:
            connection = request.get(_LIVE_CONNECTION)
            if connection is not None:
                self.rt.live.close(connection)


def add_graphql_route(app: web.Application) -> None:
    view = GroundstationGraphQLView(app[RUNTIME_KEY])
    app.router.add_route("*", "/graphql", view)


__all__ = ["GroundstationGraphQLView", "add_graphql_route", "session_token"]
