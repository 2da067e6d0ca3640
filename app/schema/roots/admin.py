"""Root fields for people, teams, registration tokens, satellite administration and
commands (docs/graphql.md §2–3).

Fields only global administrators may use declare `GLOBAL_ADMIN` (refused with
FORBIDDEN before any argument is looked at); the others declare `SIGNED_IN` and
leave the per-team rules to `services.permissions`.
"""

from __future__ import annotations

import strawberry

from app.resolvers import admin
from app.schema.pagination import Connection
from app.schema.permissions import GLOBAL_ADMIN, SIGNED_IN
from app.schema.types.admin import (
    AuditEntry,
    IssuedRegistrationToken,
    RegistrationToken,
    RotatedKey,
)
from app.schema.types.commands import Command
from app.schema.types.people import Team, TeamMember, User
from app.schema.types.satellites import Satellite


@strawberry.type
class AdminQuery:
    registration_tokens: list[RegistrationToken] = strawberry.field(
        resolver=admin.registration_tokens, permission_classes=SIGNED_IN,
        description="Without teamId: the global tokens (global administrators).")
    users: Connection[User] = strawberry.field(
        resolver=admin.users_, permission_classes=GLOBAL_ADMIN)
    audit_log: Connection[AuditEntry] = strawberry.field(
        resolver=admin.audit_log, permission_classes=SIGNED_IN,
        description="Newest first: all for global administrators, their teams' for team "
                    "administrators, nothing for others.")


@strawberry.type
class AdminMutation:
    create_user: User = strawberry.mutation(
        resolver=admin.create_user, permission_classes=GLOBAL_ADMIN)
    create_team: Team = strawberry.mutation(
        resolver=admin.create_team, permission_classes=GLOBAL_ADMIN)
    add_team_member: TeamMember = strawberry.mutation(
        resolver=admin.add_team_member, permission_classes=SIGNED_IN)
    remove_team_member: bool = strawberry.mutation(
        resolver=admin.remove_team_member, permission_classes=SIGNED_IN)
    create_registration_token: IssuedRegistrationToken = strawberry.mutation(
        resolver=admin.create_registration_token, permission_classes=SIGNED_IN)
    create_registration_tokens: list[IssuedRegistrationToken] = strawberry.mutation(
        resolver=admin.create_registration_tokens, permission_classes=SIGNED_IN,
        description="Issue `count` (1 to 10,000) single-use tokens at once, for provisioning "
        "a fleet; audited as one action. Each value is shown only in this answer.")
    revoke_registration_token: bool = strawberry.mutation(
        resolver=admin.revoke_registration_token, permission_classes=SIGNED_IN)
    update_satellite: Satellite = strawberry.mutation(
        resolver=admin.update_satellite, permission_classes=SIGNED_IN)
    set_team_limits: Team = strawberry.mutation(
        resolver=admin.set_team_limits, permission_classes=GLOBAL_ADMIN,
        description="Global administrators only: limits bound what a team may use. "
                    "An omitted limit is unchanged; null clears it.")
    delete_satellite: bool = strawberry.mutation(
        resolver=admin.delete_satellite, permission_classes=SIGNED_IN)
    rotate_satellite_key: RotatedKey = strawberry.mutation(
        resolver=admin.rotate_satellite_key, permission_classes=SIGNED_IN)
    enqueue_command: Command = strawberry.mutation(
        resolver=admin.enqueue_command, permission_classes=SIGNED_IN)
    cancel_command: Command = strawberry.mutation(
        resolver=admin.cancel_command, permission_classes=SIGNED_IN)


__all__ = ["AdminMutation", "AdminQuery"]
