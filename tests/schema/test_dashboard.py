"""The dashboard query costs a fixed number of SQL queries, whatever the fleet size
(docs/architecture.md §7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import Settings
from app.models import SatelliteProcess
from app.models.enums import GlobalRole, SatelliteType
from tests.fixtures.graphql import ClientFactory
from tests.fixtures.people import TeamFactory
from tests.fixtures.queries import counting_queries
from tests.fixtures.satellites import SatelliteFactory
from tests.fixtures.server import make_settings

DASHBOARD = """{
  satellites(first: 100) {
    totalCount
    edges { node { id name status online lastHeartbeatAt processCount latestMetrics
                   team { id name slug } } }
  }
}"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """No background work during the count: refresh, jobs and flushes wait an hour."""
    return make_settings(tmp_path, state_refresh_seconds=3600.0, jobs_interval_seconds=3600.0,
                         flush_interval_seconds=3600.0)


async def build_fleet(count: int, make_team: TeamFactory,
                      make_satellite: SatelliteFactory) -> None:
    team = await make_team()
    for index in range(count):
        satellite = await make_satellite(
            satellite_type=SatelliteType.TEAM if index % 2 else SatelliteType.GLOBAL,
            team_id=team.id if index % 2 else None,
        )
        await SatelliteProcess.create(satellite_id=satellite.id, process_id=f"p-{index}",
                                      team_id=team.id)


async def test_the_dashboard_query_count_does_not_grow_with_the_fleet(
    graphql_as: ClientFactory, make_team: TeamFactory, make_satellite: SatelliteFactory
) -> None:
    admin = await graphql_as(global_role=GlobalRole.GLOBAL_ADMIN)
    counts: list[int] = []
    built = 0
    for size in (2, 50):
        await build_fleet(size - built, make_team, make_satellite)
        built = size
        await admin.data("{ me { id } }")  # the session is verified (and cached) first
        with counting_queries() as statements:
            data = await admin.data(DASHBOARD)
        counts.append(len(statements))

        nodes = [edge["node"] for edge in data["satellites"]["edges"]]
        assert data["satellites"]["totalCount"] == len(nodes) == size
        assert all(node["processCount"] == 1 for node in nodes)
        assert sum(node["team"] is not None for node in nodes) == size // 2

    assert counts[0] == counts[1], counts


async def test_relations_asked_through_fragments_or_for_one_satellite_answer_the_same(
    graphql_as: ClientFactory, make_team: TeamFactory, make_satellite: SatelliteFactory
) -> None:
    """The list prefetches the relations its selection names, fragments included; a single
    satellite (no prefetch) loads them on demand. Both give the same answers."""
    admin = await graphql_as(global_role=GlobalRole.GLOBAL_ADMIN)
    await build_fleet(4, make_team, make_satellite)
    listed = await admin.data("""
        fragment Relations on Satellite { processCount team { id name } }
        { satellites { edges { node { id ...Relations ... on Satellite { teamId } } } } }""")
    nodes = {edge["node"]["id"]: edge["node"] for edge in listed["satellites"]["edges"]}
    assert len(nodes) == 4
    for satellite_id, node in nodes.items():
        one = await admin.data("""query($id: ID!) { satellite(id: $id) {
            processCount teamId team { id name } } }""", {"id": satellite_id})
        assert one["satellite"] == {key: node[key] for key in ("processCount", "teamId", "team")}
        assert node["processCount"] == 1
        assert (node["team"] or {}).get("id") == node["teamId"]


async def test_the_fleet_list_searches_names_in_any_case(
    graphql_as: ClientFactory, make_satellite: SatelliteFactory
) -> None:
    for name in ("edge-Berlin-1", "edge-berlin-2", "core-paris"):
        await make_satellite(name=name)
    admin = await graphql_as(global_role=GlobalRole.GLOBAL_ADMIN)
    document = ("query($s: String) { satellites(search: $s) { totalCount "
                "edges { node { name } } } }")
    found = (await admin.data(document, {"s": "BERLIN"}))["satellites"]
    assert found["totalCount"] == 2
    assert [edge["node"]["name"] for edge in found["edges"]] == ["edge-Berlin-1",
                                                                 "edge-berlin-2"]
    assert await admin.error_code(document, {"s": "x" * 101}) == "VALIDATION"
