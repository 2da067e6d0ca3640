"""The README's "Running several instances" blocks, run as written against a fresh
PostgreSQL database and Redis prefix (tests/fixtures/readme.py says how).

The reader's settings block (createdb, the URLs, the ports) is the one not run: this
test exports its own values for the same variables instead.
"""

from __future__ import annotations

import secrets
import socket
from pathlib import Path

import pytest

from tests.fixtures.readme import SCALEOUT_SECTIONS, readme_blocks, run_section, runnable_sections
from tests.fixtures.server import with_channel_prefix
from tests.scaleout.conftest import REDIS_URL
from tests.scaleout.instances import needs_postgres_and_redis

SECTIONS = runnable_sections(readme_blocks())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@needs_postgres_and_redis
@pytest.mark.slow
@pytest.mark.timeout(400)
@pytest.mark.parametrize("section", sorted(SCALEOUT_SECTIONS))
async def test_the_several_instances_walk_through_runs_as_written(
    section: str, shared_database: str, tmp_path: Path
) -> None:
    redis_url = with_channel_prefix(REDIS_URL, f"gs-readme-{secrets.token_hex(6)}:")
    await run_section(SECTIONS[section], tmp_path, DATABASE_URL=shared_database,
                      REDIS_URL=redis_url, PORT_A=str(_free_port()), PORT_B=str(_free_port()))
