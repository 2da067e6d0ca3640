"""Who a person is to the system: their global role and team memberships (docs/graphql.md §2).

A `Principal` is built once per request (or websocket connection) from a valid
session and handed to every service a person calls. Effective rights are the
union of the global role and the memberships.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from app.models import TeamMembership, User
from app.models.enums import ActorType, GlobalRole, TeamRole
from app.services.common.actors import Actor


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    email: str
    global_role: GlobalRole
    memberships: Mapping[str, TeamRole] = field(default_factory=dict)
    session_id: str | None = None
    address: str | None = None

    @property
    def is_global_admin(self) -> bool:
        return self.global_role is GlobalRole.GLOBAL_ADMIN

    @property
    def team_ids(self) -> frozenset[str]:
        """Teams the person belongs to (any role)."""
        return frozenset(self.memberships)

    @property
    def admin_team_ids(self) -> frozenset[str]:
        """Teams the person administers."""
        return frozenset(
            team for team, role in self.memberships.items() if role is TeamRole.TEAM_ADMIN
        )

    def is_member(self, team_id: str | None) -> bool:
        """May see the team's objects (global admins see every team)."""
        return self.is_global_admin or (team_id is not None and team_id in self.memberships)

    def is_team_admin(self, team_id: str | None) -> bool:
        """May change the team's objects (global admins may change every team's)."""
        return self.is_global_admin or (
            team_id is not None and self.memberships.get(team_id) is TeamRole.TEAM_ADMIN
        )

    @property
    def actor(self) -> Actor:
        return Actor(ActorType.USER, user_id=self.user_id, address=self.address)


# The command line: whoever runs it has the machine's database and keys, so its reads see
# what a global administrator sees; its writes are audited as the CLI actor.
CLI_PRINCIPAL = Principal(user_id="cli", email="", global_role=GlobalRole.GLOBAL_ADMIN)


async def load_principal(
    user_id: str, *, session_id: str | None = None, address: str | None = None
) -> Principal | None:
    """The principal of a user (two queries), or None when the user no longer exists."""
    user = await User.get_or_none(id=user_id)
    if user is None:
        return None
    rows = await TeamMembership.filter(user_id=user_id).values_list("team_id", "role")
    memberships = {str(team_id): TeamRole(role) for team_id, role in rows}
    return Principal(user.id, user.email, user.global_role, memberships, session_id, address)


__all__ = ["CLI_PRINCIPAL", "Principal", "load_principal"]
