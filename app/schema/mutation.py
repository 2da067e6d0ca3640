"""The root Mutation type: one mutation per use case, each a call into a service."""

from __future__ import annotations

import strawberry

from app.resolvers import session
from app.schema.permissions import SIGNED_IN
from app.schema.types.people import LoginPayload


@strawberry.type
class Mutation:
    login: LoginPayload = strawberry.mutation(resolver=session.login)
    logout: bool = strawberry.mutation(resolver=session.logout, permission_classes=SIGNED_IN)
    change_password: bool = strawberry.mutation(
        resolver=session.change_password, permission_classes=SIGNED_IN)


__all__ = ["Mutation"]
