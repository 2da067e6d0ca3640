"""`groundstation catalog import FILE` (docs/operations.md §3): prints the number imported."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from app.cli import main
from app.config import Settings
from app.models import McpServer
from app.runtime import Runtime
from app.services.mcp.catalog import get_server_by_slug
from tests.cli.conftest import Cli, cli_environment
from tests.services.test_catalog import DESIGN_EXAMPLE


def write(tmp_path: Path, text: str, name: str = "catalog.json") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


async def test_the_console_script_imports_a_catalog_and_prints_the_count(
    settings: Settings, tmp_path: Path
) -> None:
    script = Path(sys.executable).with_name("groundstation")
    path = write(tmp_path, DESIGN_EXAMPLE)
    for _ in range(2):  # the second run updates in place: still two imported
        process = await asyncio.create_subprocess_exec(
            str(script), "catalog", "import", path, env=cli_environment(settings),
            cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await process.communicate()
        assert process.returncode == 0, stderr.decode()
        assert stdout.decode() == "2\n"


async def test_reimport_counts_updates_and_keeps_one_row_per_slug(cli: Cli, tmp_path: Path,
                                                                  rt: Runtime) -> None:
    path = write(tmp_path, DESIGN_EXAMPLE)
    assert (await cli("catalog", "import", path)).line == "2"
    document = json.loads(DESIGN_EXAMPLE)
    document["servers"][1]["url"] = "https://mcp.example.com/v2"
    assert (await cli("catalog", "import", write(tmp_path, json.dumps(document)))).line == "2"
    assert await McpServer.all().count() == 2
    assert (await get_server_by_slug("web-search")).url == "https://mcp.example.com/v2"


@pytest.mark.parametrize(("content", "expected"), [
    (None, "cannot read"),
    ("{\"servers\": [", "is not valid JSON"),
    ("[1, 2]", "the top level must be an object"),
    ('{"servers": [{"slug": "ok-one", "name": "A", "transport_type": "stdio", '
     '"command": "x"}, {"slug": "b", "name": "B", "transport_type": "http"}]}',
     "servers[1].slug"),
], ids=["missing-file", "bad-json", "not-an-object", "invalid-server"])
async def test_a_bad_file_is_one_error_line_and_imports_nothing(
    cli: Cli, tmp_path: Path, rt: Runtime, content: str | None, expected: str
) -> None:
    path = str(tmp_path / "absent.json") if content is None else write(tmp_path, content)
    result = await cli("catalog", "import", path)
    assert result.returncode == 1
    line = result.assert_one_line_error()
    assert expected in line
    assert await McpServer.all().count() == 0


def test_catalog_import_answers_help(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(["catalog", "import", "--help"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("usage: groundstation catalog import")
    assert list(tmp_path.iterdir()) == []
