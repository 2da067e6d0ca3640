"""docs/operations.md §3: every command has --help; a failure is one `error:` line and a
non-zero exit."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from app.cli import main
from app.config import Settings
from tests.cli.conftest import Cli, cli_environment

COMMANDS = [
    [], ["serve"], ["admin"], ["admin", "create"], ["team"], ["team", "create"],
    ["token"], ["token", "create"], ["token", "list"], ["token", "revoke"],
    ["catalog"], ["catalog", "import"], ["install"],
    ["command"], ["command", "send"], ["satellites"], ["satellite"],
    ["satellite", "disable"], ["satellite", "enable"], ["satellite", "delete"],
    ["satellite", "rotate-key"],
    ["migrate"], ["doctor"], ["team", "list"], ["team", "show"], ["user"], ["user", "list"],
    ["user", "show"], ["user", "reset-password"], ["catalog", "list"], ["catalog", "show"],
    ["install", "list"], ["install", "show"], ["command", "list"], ["command", "show"],
    ["satellite", "show"], ["satellite", "list"], ["simulate"], ["metrics"],
    ["metrics", "export"], ["demo"],
]
UNKNOWN_ID = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: " ".join(command) or "-")
def test_every_command_and_subcommand_answers_help(
    command: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # In-process (the parser is the same object the script uses); the script's own wiring
    # is covered by the console-script test below.
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: {' '.join(['groundstation', *command])}")
    assert list(tmp_path.iterdir()) == []  # help never touches the database


async def test_the_installed_console_script_runs_the_cli(settings: Settings, tmp_path: Path
                                                        ) -> None:
    script = Path(sys.executable).with_name("groundstation")
    assert script.exists(), "install the project (pip install -e .) to get the console script"
    process = await asyncio.create_subprocess_exec(
        str(script), "satellites", "--json", env=cli_environment(settings), cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    assert stdout.decode() == "[]\n"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["command", "send", "--satellite", UNKNOWN_ID, "--type", "spawn"], "not found"),
        (["command", "send", "--satellite", UNKNOWN_ID, "--type", "spawn", "--payload", "{x"],
         "not valid JSON"),
        (["command", "send", "--satellite", UNKNOWN_ID, "--type", "spawn", "--payload", "[]"],
         "must be a JSON object"),
        (["command", "send", "--satellite", UNKNOWN_ID, "--type", "launch"], "invalid choice"),
        (["token", "create", "--scope", "team", "--team", "no-such-team"], "no-such-team"),
        (["token", "create", "--scope", "global", "--hours", "100"], "hours"),
        (["token", "revoke", UNKNOWN_ID], "Registration token not found"),
        (["team", "create", "--name", "Team", "--slug", "ok-slug", "--admin", "x@example.com"],
         "x@example.com"),
        (["satellite", "disable", UNKNOWN_ID], "Satellite not found"),
        (["satellite", "rotate-key", UNKNOWN_ID], "Satellite not found"),
        (["token"], "required"),
        (["bogus"], "invalid choice"),
    ],
    ids=lambda value: "-".join(value) if isinstance(value, list) else None,
)
async def test_a_failure_is_one_error_line_on_stderr_and_nothing_on_stdout(
    cli: Cli, argv: list[str], expected: str
) -> None:
    result = await cli(*argv)
    line = result.assert_one_line_error()
    assert expected.lower() in line.lower()


async def test_usage_errors_exit_2_and_domain_errors_exit_1(cli: Cli) -> None:
    usage, domain = await asyncio.gather(
        cli("token", "create"), cli("token", "revoke", UNKNOWN_ID)
    )
    assert usage.returncode == 2
    assert domain.returncode == 1


async def test_a_bad_setting_is_reported_by_its_variable_name(cli: Cli) -> None:
    result = await cli("satellites", env={"DATABASE_URL": "mysql://somewhere/db"})
    assert "DATABASE_URL" in result.assert_one_line_error()


async def test_admin_create_without_a_password_and_without_a_terminal_fails_cleanly(
    cli: Cli
) -> None:
    result = await cli("admin", "create", "--email", "admin@example.com")
    assert "password" in result.assert_one_line_error()
