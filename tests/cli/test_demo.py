"""`groundstation demo` (docs/operations.md §13): a throw-away server with people and a
simulated fleet that comes online, gone again after Ctrl-C."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from tests.fixtures.demo import WAIT_SECONDS, running_demo


async def _graphql(http: aiohttp.ClientSession, url: str, query: str,
                   token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.post(f"{url}/graphql", json={"query": query}, headers=headers) as answer:
        result = await answer.json()
    assert "errors" not in result, result
    return result["data"]


async def test_the_demo_serves_a_live_fleet_and_cleans_up_after_ctrl_c(tmp_path: Path) -> None:
    async with running_demo(tmp_path, satellites=4) as demo:
        assert demo.directory.is_dir()
        async with aiohttp.ClientSession() as http:
            login = await _graphql(http, demo.url, 'mutation { login(email: "admin@demo.example", '
                                   f'password: "{demo.password}") {{ token }} }}')
            token = login["login"]["token"]
            for _ in range(int(WAIT_SECONDS * 4)):
                data = await _graphql(http, demo.url, "{ satellites { edges { node { online "
                                      "teamId } } } teams { slug } }", token)
                nodes = [edge["node"] for edge in data["satellites"]["edges"]]
                if len(nodes) == 4 and all(node["online"] for node in nodes):
                    break
                await asyncio.sleep(0.25)
        assert len(nodes) == 4, nodes
        assert all(node["online"] for node in nodes), nodes
        assert {node["teamId"] is None for node in nodes} == {True, False}  # both kinds
        assert sorted(team["slug"] for team in data["teams"]) == ["acme", "globex"]
    assert demo.exit_code == 0
    assert not demo.directory.exists()
