"""Shared fixtures: the real app from the real factory, a real database, real sockets.

SQLite unless TEST_DATABASE_URL selects PostgreSQL (tests/fixtures/server.py, which
also skips `sqlite_only` tests there).
"""

pytest_plugins = [
    "tests.fixtures.server",
    "tests.fixtures.satellites",
    "tests.fixtures.people",
    "tests.fixtures.threaded",
    "tests.fixtures.mcp",
    "tests.fixtures.graphql",
    "tests.fixtures.redis",
    "tests.fixtures.webhooks",
]
