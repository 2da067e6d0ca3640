"""`groundstation simulate` as an operator runs it: a real process against a real server."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from app.cli import main
from app.models.enums import TokenScope
from app.runtime import Runtime
from app.services.common.actors import CLI_ACTOR
from app.services.satellites.tokens import issue_registration_tokens
from tests.fixtures.server import RunningServer


@pytest.mark.parametrize("arguments", [
    ["--faults", "meteor"], ["--satellites", "0"], ["--duration", "soon"],
])
def test_bad_arguments_exit_2_with_a_usage_line(
    arguments: list[str], capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["simulate", "--url", "http://127.0.0.1:9", "--satellites", "1", *arguments])
    assert exited.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_too_few_tokens_exit_2_saying_how_many(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("only-one\n")
    status = main(["simulate", "--url", "http://127.0.0.1:9", "--satellites", "3",
                   "--token-file", str(tokens)])
    assert status == 2
    assert "3 satellites need as many tokens" in capsys.readouterr().err


async def test_a_short_run_prints_a_json_summary_and_saves_credentials(
    server: RunningServer, rt: Runtime, tmp_path: Path,
) -> None:
    issued = await issue_registration_tokens(rt, count=5, scope=TokenScope.GLOBAL, team_id=None,
                                             hours=1, actor=CLI_ACTOR)
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("".join(f"{token.token}\n" for token in issued))
    credentials = tmp_path / "credentials.txt"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "simulate", "--url", server.url("/"),
        "--satellites", "5", "--duration", "4", "--token-file", str(tokens), "--json",
        "--credentials-out", str(credentials),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)

    assert process.returncode == 0, err.decode()
    summary = json.loads(out)
    assert (summary["satellites"], summary["registered"], summary["errors"]) == (5, 5, 0)
    assert summary["bring_up"]["routes"]["register"]["requests"] == 5
    assert "[simulate]" in err.decode()  # progress on stderr
    lines = credentials.read_text().splitlines()
    assert len(lines) == 5
    assert all(rt.fleet.get(line.split()[0]) is not None for line in lines)
    assert credentials.stat().st_mode & 0o077 == 0
