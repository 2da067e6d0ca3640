"""The README's shell blocks run as written (tests/fixtures/readme.py says how).

Each `## ` section with runnable blocks is one test: its server block (if any) is
started on a free port, the rest run in one bash against it and must exit 0. The
several-instances section needs PostgreSQL and Redis (tests/scaleout/test_readme.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.readme import SCALEOUT_SECTIONS, readme_blocks, run_section, runnable_sections

BLOCKS = readme_blocks()
SECTIONS = runnable_sections(BLOCKS)


def test_the_readme_has_the_walk_throughs_and_says_why_a_block_is_not_run() -> None:
    assert {"Walk-through", "GraphQL walk-through", *SCALEOUT_SECTIONS} <= set(SECTIONS)
    for block in BLOCKS:
        assert block.not_run is None or len(block.not_run) > 10, block
    for section, blocks in SECTIONS.items():
        servers = [block for block in blocks if block.server]
        assert len(servers) <= 1, f"{section}: one server block at most"
        assert blocks[0].server or not servers, f"{section}: the server block comes first"


def test_a_marker_must_sit_right_before_a_shell_block(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("## A\n\n<!-- not-run: a reason -->\nprose\n\n```sh\ntrue\n```\n")
    with pytest.raises(ValueError, match="not followed by a block"):
        readme_blocks(readme)
    readme.write_text("## A\n\n<!-- sever -->\n```sh\ntrue\n```\n")
    with pytest.raises(ValueError, match="unknown marker"):
        readme_blocks(readme)


@pytest.mark.slow
@pytest.mark.sqlite_only(reason="the walk-throughs run on SQLite, as a reader's first run does")
@pytest.mark.parametrize("section", sorted(set(SECTIONS) - SCALEOUT_SECTIONS))
async def test_the_walk_through_runs_as_written(section: str, tmp_path: Path) -> None:
    await run_section(SECTIONS[section], tmp_path)
