"""Short references to objects that other types name (so any type module can use them)."""

from __future__ import annotations

import strawberry

from app.models import User as UserRow


@strawberry.type
class UserRef:
    """A user named by another object (owner, actor): id and email only."""

    id: strawberry.ID
    email: str

    @classmethod
    def of(cls, row: UserRow) -> UserRef:
        return cls(id=strawberry.ID(row.id), email=row.email)


__all__ = ["UserRef"]
