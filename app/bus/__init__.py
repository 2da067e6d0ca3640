"""Publish/subscribe: in-process by default, Redis pub/sub when REDIS_URL is set."""

from app.bus.base import DROPPED, RESYNC, Bus, Channels, Message
from app.bus.memory import InProcessBus

__all__ = ["DROPPED", "RESYNC", "Bus", "Channels", "InProcessBus", "Message", "create_bus"]


def create_bus(redis_url: str | None) -> Bus:
    if redis_url:
        from app.bus.redis import RedisBus  # imports redis only when configured

        return RedisBus(redis_url)
    return InProcessBus()
