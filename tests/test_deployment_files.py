"""The deployment files agree with the code: every setting is in `.env.example` (with its
default) and in the README's Settings table, and the container file, the compose file and
the systemd unit run commands the CLI parser accepts."""

from __future__ import annotations

import re
import shlex
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.cli.parser import build_parser
from app.config import Settings, env_name, settings_from_mapping

ROOT = Path(__file__).resolve().parents[1]
ENV_EXAMPLE = ROOT / ".env.example"
README = ROOT / "README.md"
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "deploy" / "compose.yaml"
UNIT = ROOT / "deploy" / "groundstation.service"

SETTINGS = {env_name(spec.name): spec.name for spec in fields(Settings)}
# The documented worst case of a stop beyond GROUNDSTATION_SHUTDOWN_TIMEOUT_SECONDS
# (docs/operations.md §9): a process manager must wait longer than both together.
SHUTDOWN_STEPS_SECONDS = 8.0


_SETTING_LINE = re.compile(r"# ([A-Z][A-Z0-9_]*)=(.*)")


def env_example_lines() -> dict[str, str]:
    """`# NAME=value` lines of .env.example: name -> value."""
    found: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = _SETTING_LINE.fullmatch(line)
        if match:
            assert match.group(1) not in found, f"{match.group(1)} listed twice"
            found[match.group(1)] = match.group(2)
    return found


def test_env_example_lists_every_setting_and_nothing_else() -> None:
    listed = env_example_lines()
    missing = sorted(set(SETTINGS) - set(listed))
    assert not missing, f".env.example lacks {missing}: add `# NAME=default` with a comment"
    assert not sorted(set(listed) - set(SETTINGS)), "unknown names in .env.example"


def test_env_example_gives_each_default_with_a_comment() -> None:
    defaults = Settings()
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    for name, value in env_example_lines().items():
        field = SETTINGS[name]
        # Uncommented alone, the line would set the default itself.
        assert getattr(settings_from_mapping({name: value}), field) == getattr(
            defaults, field), f".env.example: {name}={value} is not the default"
        above = lines[lines.index(f"# {name}={value}") - 1]
        assert above.startswith("# "), f".env.example: {name} needs a comment above it"
        assert not _SETTING_LINE.fullmatch(above), f".env.example: {name} needs a comment"


def test_a_copy_of_env_example_changes_nothing() -> None:
    for number, line in enumerate(ENV_EXAMPLE.read_text(encoding="utf-8").splitlines(), 1):
        assert not line.strip() or line.startswith("#"), f".env.example:{number} is not commented"


def test_the_readme_settings_table_lists_every_setting() -> None:
    text = README.read_text(encoding="utf-8")
    table = text[text.index("\n## Settings\n"):]
    table = table[:table.index("\n## ", 1)]
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", table, flags=re.MULTILINE))
    missing = sorted(set(SETTINGS) - documented)
    assert not missing, f"the README's Settings table lacks {missing}"


def _compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def _dockerfile_json(instruction: str) -> list[str]:
    match = re.search(rf"^{instruction} (\[.*\])$", DOCKERFILE.read_text(), re.MULTILINE)
    assert match, f"Dockerfile: no {instruction} in exec form"
    return list(yaml.safe_load(match.group(1)))


def _unit_values(key: str) -> list[str]:
    return re.findall(rf"^{key}=(.*)$", UNIT.read_text(encoding="utf-8"), re.MULTILINE)


def _invocations() -> list[tuple[str, list[str]]]:
    """(where, argv after `groundstation`) for every command the deployment files run."""
    entrypoint = _dockerfile_json("ENTRYPOINT")
    assert entrypoint == ["groundstation"]
    found = [("Dockerfile CMD", _dockerfile_json("CMD"))]
    for name, service in _compose()["services"].items():
        if "command" in service:  # the others run images of their own
            found.append((f"compose service {name}", list(service["command"])))
    for key in ("ExecStartPre", "ExecStart"):
        for line in _unit_values(key):
            program, *argv = shlex.split(line)
            assert Path(program).name == "groundstation", line
            found.append((f"unit {key}", argv))
    return found


def _parser_accepts(argv: list[str]) -> bool:
    try:
        build_parser().parse_args(argv)
    except SystemExit:
        return False
    return True


@pytest.mark.parametrize(("where", "argv"), _invocations(), ids=lambda value: str(value))
def test_the_deployment_files_run_commands_the_cli_has(
    where: str, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    if _parser_accepts(argv):
        return
    refusal = capsys.readouterr().err.strip()
    pytest.fail(f"{where}: `groundstation {' '.join(argv)}` is refused: {refusal}")


def test_the_commands_the_checks_know_are_real() -> None:
    """The check above can fail: the parser refuses what it does not know."""
    assert _parser_accepts(["serve", "--port", "0"])
    assert not _parser_accepts(["serve", "--no-such-flag"])
    assert not _parser_accepts(["no-such-command"])


def test_compose_migrates_once_before_the_instances_start() -> None:
    services = _compose()["services"]
    assert services["migrate"]["command"] == ["migrate"]
    instances = {name: service for name, service in services.items()
                 if service.get("command", [None])[0] == "serve"}
    assert len(instances) == 2, "two instances"
    for name, service in instances.items():
        assert "--no-migrate" in service["command"], name
        condition = service["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully", name
        assert service["env_file"] == services["migrate"]["env_file"], "one SECRET_KEY"


def _seconds(raw: str) -> float:
    match = re.fullmatch(r"(\d+)(s|min)?", raw.strip())
    assert match, raw
    return float(match.group(1)) * (60 if match.group(2) == "min" else 1)


def test_process_managers_wait_longer_than_a_graceful_stop_takes() -> None:
    longest_stop = Settings().shutdown_timeout_seconds + SHUTDOWN_STEPS_SECONDS
    assert _seconds(_unit_values("TimeoutStopSec")[0]) > longest_stop
    for name, service in _compose()["services"].items():
        if service.get("command", [None])[0] == "serve":
            assert _seconds(service["stop_grace_period"]) > longest_stop, name


def test_the_unit_writes_only_its_data_directory() -> None:
    data_dir = _unit_values("Environment")[0].removeprefix("GROUNDSTATION_DATA_DIR=")
    assert _unit_values("ProtectSystem") == ["strict"]
    assert _unit_values("ReadWritePaths") == [data_dir]
    assert _unit_values("NoNewPrivileges") == ["yes"]
    assert _unit_values("User") == ["groundstation"]


def test_the_image_runs_unprivileged_with_its_data_in_the_volume() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"^USER groundstation$", text, re.MULTILINE)
    assert re.search(r"^VOLUME /data$", text, re.MULTILINE)
    assert "GROUNDSTATION_DATA_DIR=/data" in text
    assert f"EXPOSE {Settings().port}" in text


def test_the_build_context_leaves_out_local_state_and_secrets() -> None:
    ignored = set((ROOT / ".dockerignore").read_text(encoding="utf-8").split())
    assert {".env", ".venv", "*.db", "*.db.secret"} <= ignored
