"""Root fields for the MCP catalogue, team installations and tool usage (docs/graphql.md §3)."""

from __future__ import annotations

import strawberry

from app.resolvers import mcp
from app.schema.permissions import GLOBAL_ADMIN, SIGNED_IN
from app.schema.types.mcp import Installation, McpServer, UsageSummary


@strawberry.type
class McpQuery:
    mcp_servers: list[McpServer] = strawberry.field(
        resolver=mcp.mcp_servers, permission_classes=SIGNED_IN)
    installations: list[Installation] = strawberry.field(
        resolver=mcp.installations_of_team, permission_classes=SIGNED_IN)
    installation: Installation | None = strawberry.field(
        resolver=mcp.installation, permission_classes=SIGNED_IN)
    usage: UsageSummary = strawberry.field(resolver=mcp.usage, permission_classes=SIGNED_IN)


@strawberry.type
class McpMutation:
    create_mcp_server: McpServer = strawberry.mutation(
        resolver=mcp.create_mcp_server, permission_classes=GLOBAL_ADMIN)
    update_mcp_server: McpServer = strawberry.mutation(
        resolver=mcp.update_mcp_server, permission_classes=GLOBAL_ADMIN)
    install_mcp_server: Installation = strawberry.mutation(
        resolver=mcp.install_mcp_server, permission_classes=SIGNED_IN)
    update_installation: Installation = strawberry.mutation(
        resolver=mcp.update_installation, permission_classes=SIGNED_IN)
    delete_installation: bool = strawberry.mutation(
        resolver=mcp.delete_installation, permission_classes=SIGNED_IN)
    set_user_config: Installation = strawberry.mutation(
        resolver=mcp.set_user_config, permission_classes=SIGNED_IN)
    rollback_installation: Installation = strawberry.mutation(
        resolver=mcp.rollback_installation, permission_classes=SIGNED_IN)


__all__ = ["McpMutation", "McpQuery"]
