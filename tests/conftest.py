"""Shared fixtures: the real app from the real factory, a real SQLite file, real sockets."""

pytest_plugins = [
    "tests.fixtures.server",
    "tests.fixtures.satellites",
    "tests.fixtures.people",
    "tests.fixtures.threaded",
    "tests.fixtures.mcp",
    "tests.fixtures.graphql",
]
