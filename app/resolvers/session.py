"""Login, logout, password change and `me`: a few lines each over `services.sessions`."""

from __future__ import annotations

from app.schema.context import SESSION_COOKIE, Info, principal_of, set_session_cookie
from app.schema.types.people import LoginPayload, User
from app.services.people import sessions


async def me(info: Info) -> User | None:
    principal = info.context.principal
    if principal is None:
        return None
    row = await info.context.loaders.user.load(principal.user_id)
    return None if row is None else User.of(row)


async def login(info: Info, email: str, password: str) -> LoginPayload:
    context = info.context
    result = await sessions.login(
        context.rt, email=email, password=password, address=context.address,
        user_agent=context.request.headers.get("User-Agent"),
    )
    context.principal = result.principal
    set_session_cookie(context.rt, context.request, context.response, result.token)
    return LoginPayload(token=result.token, user=User.of(result.user))


async def logout(info: Info) -> bool:
    await sessions.logout(info.context.rt, principal_of(info))
    info.context.response.del_cookie(SESSION_COOKIE, path="/")
    return True


async def change_password(info: Info, current_password: str, new_password: str) -> bool:
    await sessions.change_password(info.context.rt, principal_of(info),
                                   current_password=current_password,
                                   new_password=new_password)
    return True


__all__ = ["change_password", "login", "logout", "me"]
