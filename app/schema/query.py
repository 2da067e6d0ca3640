"""The root Query, Mutation and Subscription types, merged from one module per area.

Each area (`app/schema/roots/*.py`) declares its root fields with their
resolvers and permissions; this module only lists the areas.
"""

from __future__ import annotations

from strawberry.tools import merge_types

from app.schema.roots.fleet import FleetMutation, FleetQuery

Query = merge_types("Query", (FleetQuery,))
Mutation = merge_types("Mutation", (FleetMutation,))

__all__ = ["Mutation", "Query"]
