"""Who is acting: recorded in the audit log and used for authorization."""

from __future__ import annotations

from dataclasses import dataclass

from app.models.enums import ActorType


@dataclass(frozen=True, slots=True)
class Actor:
    type: ActorType
    user_id: str | None = None
    satellite_id: str | None = None
    address: str | None = None


CLI_ACTOR = Actor(ActorType.CLI)
SYSTEM_ACTOR = Actor(ActorType.SYSTEM)


def satellite_actor(satellite_id: str, address: str | None = None) -> Actor:
    return Actor(ActorType.SATELLITE, satellite_id=satellite_id, address=address)


def anonymous_actor(address: str | None) -> Actor:
    return Actor(ActorType.ANONYMOUS, address=address)
