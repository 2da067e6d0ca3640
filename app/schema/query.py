"""The root Query, Mutation and Subscription types, merged from one module per area.

Each area (`app/schema/roots/*.py`) declares its root fields with their
resolvers and permissions; this module only lists the areas.
"""

from __future__ import annotations

from strawberry.tools import merge_types

from app.schema.roots.admin import AdminMutation, AdminQuery
from app.schema.roots.alerts import AlertsMutation, AlertsQuery, AlertsSubscription
from app.schema.roots.fleet import FleetMutation, FleetQuery
from app.schema.roots.live import LiveSubscription
from app.schema.roots.mcp import McpMutation, McpQuery

Query = merge_types("Query", (FleetQuery, AdminQuery, McpQuery, AlertsQuery))
Mutation = merge_types("Mutation", (FleetMutation, AdminMutation, McpMutation,
                                   AlertsMutation))
Subscription = merge_types("Subscription", (LiveSubscription, AlertsSubscription))

__all__ = ["Mutation", "Query", "Subscription"]
