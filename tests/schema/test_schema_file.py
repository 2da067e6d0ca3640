"""`schema.graphql` is the checked-in contract (docs/graphql.md): it must match the code.

Regenerate it with:
    .venv/bin/strawberry export-schema app.schema:schema --output schema.graphql
"""

from __future__ import annotations

from pathlib import Path

from app.schema import schema

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"


def test_the_checked_in_schema_matches_the_code() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8").strip() == schema.as_str().strip(), (
        "schema.graphql is stale; run: .venv/bin/strawberry export-schema app.schema:schema "
        "--output schema.graphql"
    )


def test_the_documented_contract_names_are_all_there() -> None:
    sdl = schema.as_str()
    for signature in (
        "satellites(teamId: ID", "commands(satelliteId: ID!", "installations(teamId: ID!)",
        "login(email: String!, password: String!): LoginPayload!",
        "installMcpServer(teamId: ID!, serverId: ID!", "rollbackInstallation(id: ID!, "
        "revision: Int!): Installation!", "rotateSatelliteKey(id: ID!): RotatedKey!",
        "satelliteStatusChanged(teamId: ID", "satelliteMetrics(satelliteId: ID!): Heartbeat!",
    ):
        assert signature in sdl, signature
