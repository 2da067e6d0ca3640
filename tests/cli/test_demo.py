"""`groundstation demo` (docs/operations.md §13): a throw-away server with people and a
simulated fleet that comes online, gone again after Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp

from tests.cli.conftest import ROOT

WAIT_SECONDS = 60.0


async def _graphql(http: aiohttp.ClientSession, url: str, query: str,
                   token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.post(f"{url}/graphql", json={"query": query}, headers=headers) as answer:
        result = await answer.json()
    assert "errors" not in result, result
    return result["data"]


async def test_the_demo_serves_a_live_fleet_and_cleans_up_after_ctrl_c(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("GROUNDSTATION_") and key not in ("DATABASE_URL", "REDIS_URL",
                                                                     "SECRET_KEY")}
    env["PYTHONPATH"] = str(ROOT)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "demo", "--port", "0", "--satellites", "4",
        env=env, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    try:
        lines = [(await asyncio.wait_for(process.stdout.readline(), WAIT_SECONDS)).decode()
                 for _ in range(3)]
        url = lines[0].split()[-1]
        password = lines[1].split()[-1]
        directory = Path(lines[2].split()[1])
        assert directory.is_dir()
        async with aiohttp.ClientSession() as http:
            login = await _graphql(http, url, 'mutation { login(email: "admin@demo.example", '
                                   f'password: "{password}") {{ token }} }}')
            token = login["login"]["token"]
            for _ in range(int(WAIT_SECONDS * 4)):
                data = await _graphql(http, url, "{ satellites { edges { node { online "
                                      "teamId } } } teams { slug } }", token)
                nodes = [edge["node"] for edge in data["satellites"]["edges"]]
                if len(nodes) == 4 and all(node["online"] for node in nodes):
                    break
                await asyncio.sleep(0.25)
        assert len(nodes) == 4, nodes
        assert all(node["online"] for node in nodes), nodes
        assert {node["teamId"] is None for node in nodes} == {True, False}  # both kinds
        assert sorted(team["slug"] for team in data["teams"]) == ["acme", "globex"]
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(process.wait(), WAIT_SECONDS)
    assert code == 0
    assert not directory.exists()
