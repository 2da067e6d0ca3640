"""Publish/subscribe: in-process by default (Redis when REDIS_URL is set, see scale-out)."""

from app.bus.base import DROPPED, Bus, Channels, Message
from app.bus.memory import InProcessBus

__all__ = ["DROPPED", "Bus", "Channels", "InProcessBus", "Message", "create_bus"]


def create_bus(redis_url: str | None) -> Bus:
    if redis_url:
        raise NotImplementedError("the Redis bus arrives with the scale-out work (issue 5)")
    return InProcessBus()
