"""MCP servers: the catalogue, team installations and their tiers (template →
team → user), the merge into a satellite's config, and masked previews.

May use: `common`, `fleet`, `commands` (a changed installation pushes `configure`).
"""
