"""People: users, teams and memberships, sessions and logins, principals, the one
visibility rule (`scope`) every read applies, scoped reads and permission checks.

May use: `common`, `fleet`, `commands` (membership changes push `configure`), `mcp` (process
ids in permission checks).
"""
