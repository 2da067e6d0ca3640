"""Running the real `groundstation` command line in subprocesses against the test database."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from pathlib import Path

import pytest

from app.config import Settings, env_name

ROOT = Path(__file__).resolve().parents[2]
# Variables the CLI reads; inherited values must not leak into the tests.
_SETTING_VARIABLES = {env_name(spec.name) for spec in fields(Settings)}


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def line(self) -> str:
        """The result (the last line of stdout)."""
        return self.stdout.strip().splitlines()[-1]

    def assert_one_line_error(self) -> str:
        assert self.returncode != 0, self
        assert self.stdout == "", self
        lines = self.stderr.strip().splitlines()
        assert len(lines) == 1, self.stderr
        assert lines[0].startswith("error: "), self.stderr
        assert "Traceback" not in self.stderr
        return lines[0]


Cli = Callable[..., Awaitable[CliResult]]


def cli_environment(settings: Settings, **extra: str) -> dict[str, str]:
    env = {
        key: value for key, value in os.environ.items()
        if key not in _SETTING_VARIABLES and not key.startswith("GROUNDSTATION_")
    }
    env["DATABASE_URL"] = settings.database_url
    env["GROUNDSTATION_DATA_DIR"] = settings.data_dir  # never the real home's
    env["SECRET_KEY"] = settings.secret_key or ""
    for name in ("password_hash_time_cost", "password_hash_memory_kib",
                 "password_hash_parallelism"):  # the test cost, as the server has it
        env[env_name(name)] = str(getattr(settings, name))
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


async def run_cli(
    env: dict[str, str], cwd: Path, *argv: str, timeout: float = 60.0
) -> CliResult:
    """`python -m app.cli ARGV…` (what the `groundstation` script runs), stdin closed."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", *argv,
        env=env, cwd=cwd, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return CliResult(process.returncode, stdout.decode(), stderr.decode())


@pytest.fixture
def cli(settings: Settings, tmp_path: Path) -> Cli:
    """Run the CLI against the test's database (the same file as the `server` fixture's)."""
    workdir = tmp_path / "cli"  # no `.env` here: only the environment below counts
    workdir.mkdir(exist_ok=True)

    async def invoke(*argv: str, env: dict[str, str] | None = None) -> CliResult:
        return await run_cli(cli_environment(settings, **(env or {})), workdir, *argv)

    return invoke
