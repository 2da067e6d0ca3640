"""Root fields for sessions, teams, satellites and commands (docs/graphql.md §3)."""

from __future__ import annotations

import strawberry

from app.resolvers import satellites as fleet
from app.resolvers import session
from app.schema.pagination import Connection
from app.schema.permissions import SIGNED_IN
from app.schema.types.commands import Command
from app.schema.types.people import LoginPayload, Team, User
from app.schema.types.satellites import Satellite


@strawberry.type
class FleetQuery:
    me: User | None = strawberry.field(resolver=session.me)
    teams: list[Team] = strawberry.field(resolver=fleet.teams, permission_classes=SIGNED_IN)
    team: Team | None = strawberry.field(resolver=fleet.team, permission_classes=SIGNED_IN)
    satellites: Connection[Satellite] = strawberry.field(
        resolver=fleet.satellites, permission_classes=SIGNED_IN)
    satellite: Satellite | None = strawberry.field(
        resolver=fleet.satellite, permission_classes=SIGNED_IN)
    commands: Connection[Command] = strawberry.field(
        resolver=fleet.commands, permission_classes=SIGNED_IN)
    command: Command | None = strawberry.field(
        resolver=fleet.command, permission_classes=SIGNED_IN)


@strawberry.type
class FleetMutation:
    login: LoginPayload = strawberry.mutation(resolver=session.login)
    logout: bool = strawberry.mutation(resolver=session.logout, permission_classes=SIGNED_IN)
    change_password: bool = strawberry.mutation(
        resolver=session.change_password, permission_classes=SIGNED_IN)


__all__ = ["FleetMutation", "FleetQuery"]
