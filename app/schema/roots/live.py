"""Root subscription fields: live satellite status, events, commands, metrics
(docs/graphql.md §6)."""

from __future__ import annotations

import strawberry

from app.resolvers import live
from app.schema.permissions import SIGNED_IN


@strawberry.type
class LiveSubscription:
    satellite_status_changed = strawberry.subscription(
        resolver=live.satellite_status_changed, permission_classes=SIGNED_IN)
    satellite_events = strawberry.subscription(
        resolver=live.satellite_events, permission_classes=SIGNED_IN)
    command_updated = strawberry.subscription(
        resolver=live.command_updated, permission_classes=SIGNED_IN)
    satellite_metrics = strawberry.subscription(
        resolver=live.satellite_metrics, permission_classes=SIGNED_IN)


__all__ = ["LiveSubscription"]
