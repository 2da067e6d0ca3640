"""What every resolver receives: the runtime, the caller, per-operation loaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import strawberry
from aiohttp import web

from app.addresses import is_https
from app.errors import Unauthenticated
from app.services.people.principals import Principal

if TYPE_CHECKING:
    from app.schema.loaders import Loaders
    from app.services.context import Services

SESSION_COOKIE = "gs_session"


def set_session_cookie(rt: Services, request: web.Request, response: web.StreamResponse,
                       token: str) -> None:
    """The session cookie, valid as long as the session would be without use: set at
    login and again on each use, so it slides with the session (docs/graphql.md §1)."""
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="Lax",
                        secure=is_https(request, rt.settings), path="/",
                        max_age=rt.settings.session_idle_seconds)


@dataclass
class Context:
    rt: Services
    request: web.Request
    response: web.Response | web.WebSocketResponse
    address: str
    principal: Principal | None = None
    # graphql-transport-ws: the connection_init payload (strawberry sets it)
    connection_params: dict[str, Any] | None = None
    _loaders: Loaders | None = field(default=None, repr=False)

    @property
    def loaders(self) -> Loaders:
        """DataLoaders for this operation (websocket operations each get fresh ones)."""
        if self._loaders is None:
            from app.schema.loaders import Loaders

            self._loaders = Loaders(self)
        return self._loaders

    def renew_loaders(self) -> None:
        """Forget every loaded object: a websocket's context lives as long as the socket,
        so each subscription event starts with fresh loaders (nothing stale)."""
        self._loaders = None


Info = strawberry.Info[Context, None]


def principal_of(info: Info) -> Principal:
    """The logged-in caller, or UNAUTHENTICATED."""
    principal: Principal | None = info.context.principal
    if principal is None:
        raise Unauthenticated("Log in first", code="unauthenticated")
    return principal


__all__ = ["SESSION_COOKIE", "Context", "Info", "principal_of", "set_session_cookie"]
