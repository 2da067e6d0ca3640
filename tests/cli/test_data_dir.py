"""Where the database is (docs/operations.md §1, §3): one per-user data directory whatever
directory a command runs in; only serve, migrate and admin create create a database, and
no command creates a directory that DATABASE_URL names."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.cli.conftest import CliResult, run_cli
from tests.fixtures.server import TEST_SECRET

PASSWORD = "correct-horse-battery"


def files_under(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*"))


class Machine:
    """A user's machine in tmp_path: a home directory and two working directories, and
    no Groundstation setting in the environment."""

    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path
        self.home = tmp_path / "home"
        self.here = tmp_path / "here"
        self.elsewhere = tmp_path / "elsewhere"
        for directory in (self.home, self.here, self.elsewhere):
            directory.mkdir()
        self.data_dir = self.home / ".local" / "share" / "groundstation"

    def env(self, **extra: str) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items()
               if key not in ("DATABASE_URL", "SECRET_KEY", "REDIS_URL", "XDG_DATA_HOME",
                              "ENCRYPTION_KEYS")
               and not key.startswith("GROUNDSTATION_")}
        env.update(HOME=str(self.home), PYTHONPATH=str(Path(__file__).resolve().parents[2]),
                   GROUNDSTATION_PASSWORD_HASH_TIME_COST="1",
                   GROUNDSTATION_PASSWORD_HASH_MEMORY_KIB="1024",
                   GROUNDSTATION_PASSWORD_HASH_PARALLELISM="1")
        env.update(extra)
        return env

    async def run(self, cwd: Path, *argv: str, **env: str) -> CliResult:
        return await run_cli(self.env(**env), cwd, *argv)


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    return Machine(tmp_path)


async def test_a_command_run_where_no_database_exists_names_the_path_and_creates_nothing(
    machine: Machine
) -> None:
    before = files_under(machine.root)
    result = await machine.run(machine.elsewhere, "satellites")
    line = result.assert_one_line_error()
    assert result.returncode == 1
    assert str(machine.data_dir / "groundstation.db") in line
    assert "DATABASE_URL" in line
    assert "GROUNDSTATION_DATA_DIR" in line
    assert files_under(machine.root) == before  # no database, no key file, no directory


async def test_every_directory_finds_the_same_database(machine: Machine) -> None:
    created = await machine.run(machine.here, "admin", "create", "--email", "a@example.com",
                                "--password", PASSWORD)
    assert created.returncode == 0, created.stderr
    assert (machine.data_dir / "groundstation.db").is_file()
    assert (machine.data_dir / "groundstation.db.secret").is_file()
    assert oct(machine.data_dir.stat().st_mode & 0o777) == oct(0o700)
    assert (await machine.run(machine.here, "team", "create", "--name", "Acme",
                              "--slug", "acme")).returncode == 0
    listed = await machine.run(machine.elsewhere, "team", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert '"slug": "acme"' in listed.line
    satellites = await machine.run(machine.elsewhere, "satellites", "--json")
    assert (satellites.returncode, satellites.stdout) == (0, "[]\n")
    assert list(machine.here.iterdir()) == []
    assert list(machine.elsewhere.iterdir()) == []


async def test_xdg_data_home_and_groundstation_data_dir_choose_the_directory(
    machine: Machine
) -> None:
    xdg = machine.root / "xdg"
    result = await machine.run(machine.here, "--verbose", "migrate", XDG_DATA_HOME=str(xdg))
    assert result.returncode == 0, result.stderr
    assert (xdg / "groundstation" / "groundstation.db").is_file()
    assert f"data dir: {xdg / 'groundstation'}" in result.stderr
    chosen = machine.root / "chosen"
    chosen.mkdir()
    result = await machine.run(machine.here, "migrate", GROUNDSTATION_DATA_DIR=str(chosen))
    assert result.returncode == 0, result.stderr
    assert (chosen / "groundstation.db").is_file()


@pytest.mark.parametrize("argv", [
    ["satellites"], ["migrate"], ["admin", "create", "--email", "a@example.com",
                                  "--password", PASSWORD], ["serve", "--port", "0"],
    ["doctor"],
], ids=lambda argv: argv[0])
async def test_a_directory_named_by_database_url_is_never_created(
    machine: Machine, argv: list[str]
) -> None:
    missing = machine.root / "missing-dir" / "x.db"
    result = await machine.run(machine.here, *argv, DATABASE_URL=f"sqlite://{missing}")
    assert result.returncode == 1
    assert not missing.parent.exists()
    if argv[0] != "doctor":  # doctor reports it among its checks
        assert str(missing.parent if argv[0] != "satellites" else missing) in (
            result.assert_one_line_error())
    else:
        assert str(missing) in result.stdout


async def test_verbose_names_the_database_without_its_password(machine: Machine) -> None:
    result = await machine.run(
        machine.here, "--verbose", "satellites",
        DATABASE_URL="postgres://ops:s3cret-pw@127.0.0.1:1/fleet", SECRET_KEY=TEST_SECRET)
    assert "database: postgres://ops:***@127.0.0.1:1/fleet" in result.stderr
    assert "s3cret-pw" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: cannot connect to the database postgres://ops@127.0.0.1:1/fleet")
    assert "connection refused" in line
    assert "Errno" not in line
    assert "Error" not in line
