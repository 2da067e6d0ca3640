"""Publish/subscribe: in-process by default (Redis when REDIS_URL is set, see scale-out)."""

from app.bus.base import DROPPED, Bus, Channels, Message
from app.bus.memory import InProcessBus

__all__ = ["DROPPED", "Bus", "Channels", "InProcessBus", "Message", "create_bus"]


def create_bus(redis_url: str | None) -> Bus:
    if redis_url:
        from app.config import SettingsError

        raise SettingsError(
            "REDIS_URL is set, but this version has only the in-process bus: unset REDIS_URL "
            "(several instances sharing Redis arrive with the scale-out release)"
        )
    return InProcessBus()
