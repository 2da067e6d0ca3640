"""Settings: read once, validated, and never a hard-coded secret (docs/protocol.md §12 defect 6)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from app.config import (
    SettingsError,
    load_settings,
    read_settings,
    resolve_secret_key,
    settings_from_mapping,
)


def test_sqlite_without_secret_key_generates_a_private_key_file_kept_across_starts(
    tmp_path: Path,
) -> None:
    env = {"DATABASE_URL": f"sqlite://{tmp_path / 'gs.db'}"}
    first = load_settings(env, dotenv=None)
    again = load_settings(env, dotenv=None)
    key_file = tmp_path / "gs.db.secret"
    assert first.secret_key is not None
    assert len(first.secret_key) >= 32
    assert again.secret_key == first.secret_key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_two_installations_never_share_a_generated_secret(tmp_path: Path) -> None:
    one = load_settings({"DATABASE_URL": f"sqlite://{tmp_path / 'a.db'}"}, dotenv=None)
    two = load_settings({"DATABASE_URL": f"sqlite://{tmp_path / 'b.db'}"}, dotenv=None)
    assert one.secret_key != two.secret_key


def test_postgres_without_secret_key_refuses_to_start() -> None:
    with pytest.raises(SettingsError, match="SECRET_KEY"):
        load_settings({"DATABASE_URL": "postgres://localhost/test"}, dotenv=None)


def test_short_secret_key_is_refused() -> None:
    with pytest.raises(SettingsError, match="at least 32"):
        load_settings({"SECRET_KEY": "too-short"}, dotenv=None)


def test_malformed_numbers_name_the_variable(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="GROUNDSTATION_HEARTBEAT_INTERVAL"):
        load_settings(
            {"DATABASE_URL": f"sqlite://{tmp_path / 'gs.db'}",
             "GROUNDSTATION_HEARTBEAT_INTERVAL": "soon"},
            dotenv=None,
        )


def test_dotenv_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        f"DATABASE_URL=sqlite://{tmp_path / 'gs.db'}\nGROUNDSTATION_PORT=4000\n"
        "GROUNDSTATION_ISSUER=from-dotenv\n"
    )
    settings = load_settings({"GROUNDSTATION_PORT": "5000"}, dotenv=dotenv)
    assert settings.port == 5000
    assert settings.issuer == "from-dotenv"


def test_runtime_refuses_malformed_encryption_keys_naming_the_entry(tmp_path: Path) -> None:
    from app.runtime import build_runtime

    settings = load_settings(
        {"DATABASE_URL": f"sqlite://{tmp_path / 'gs.db'}", "ENCRYPTION_KEYS": "not-a-key"},
        dotenv=None,
    )
    with pytest.raises(SettingsError, match="ENCRYPTION_KEYS: entry 1"):
        build_runtime(settings)


@pytest.mark.parametrize(("variable", "value"), [
    ("GROUNDSTATION_PASSWORD_HASH_TIME_COST", "0"),
    ("GROUNDSTATION_PASSWORD_HASH_PARALLELISM", "0"),
    ("GROUNDSTATION_PASSWORD_HASH_MEMORY_KIB", "16"),  # under 8 KiB per lane (4 lanes)
])
def test_password_hash_costs_argon2_cannot_use_are_refused(
    tmp_path: Path, variable: str, value: str
) -> None:
    with pytest.raises(SettingsError, match=variable):
        load_settings({"DATABASE_URL": f"sqlite://{tmp_path / 'gs.db'}", variable: value},
                      dotenv=None)


@pytest.mark.parametrize(("variable", "raw"), [
    ("GROUNDSTATION_ACCESS_LOG_SAMPLE_RATE", "1.5"),
    ("GROUNDSTATION_ACCESS_LOG_SAMPLE_RATE", "-0.1"),
    ("GROUNDSTATION_ACCESS_LOG_SAMPLE_RATE", "nan"),
    ("GROUNDSTATION_ACCESS_LOG_SLOW_MS", "-1"),
    ("GROUNDSTATION_ACCESS_LOG_SLOW_MS", "nan"),
    ("GROUNDSTATION_ACCESS_LOG", "sometimes"),
])
def test_access_log_settings_out_of_range_are_refused(tmp_path: Path, variable: str, raw: str
                                                      ) -> None:
    environ = {"DATABASE_URL": f"sqlite://{tmp_path}/gs.db", variable: raw}
    with pytest.raises(SettingsError, match=variable):
        load_settings(environ, dotenv=None)


def test_access_log_defaults_sample_the_hot_routes(tmp_path: Path) -> None:
    settings = load_settings({"DATABASE_URL": f"sqlite://{tmp_path}/gs.db"}, dotenv=None)
    assert settings.access_log is True
    assert settings.access_log_sample_rate == 0.01
    assert settings.access_log_slow_ms == 1000.0


def test_the_default_database_is_in_the_per_user_data_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    default = tmp_path / "home" / ".local" / "share" / "groundstation"
    settings = read_settings({}, dotenv=None)
    assert (settings.data_dir, settings.database_url) == (
        str(default), f"sqlite://{default / 'groundstation.db'}")
    assert settings.in_data_dir
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")  # the specification says so
    assert read_settings({}, dotenv=None).data_dir == str(default)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert read_settings({}, dotenv=None).data_dir == str(tmp_path / "xdg" / "groundstation")
    chosen = read_settings({"GROUNDSTATION_DATA_DIR": "/srv/gs"}, dotenv=None)
    assert chosen.database_url == "sqlite:///srv/gs/groundstation.db"
    explicit = read_settings({"DATABASE_URL": "sqlite:///elsewhere/x.db"}, dotenv=None)
    assert not explicit.in_data_dir


def test_reading_settings_creates_no_key_file_and_a_missing_one_is_an_error(
    tmp_path: Path
) -> None:
    settings = read_settings({"DATABASE_URL": f"sqlite://{tmp_path / 'gs.db'}"}, dotenv=None)
    assert settings.secret_key is None
    with pytest.raises(SettingsError, match="gs.db.secret does not exist"):
        resolve_secret_key(settings, create=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("level", ["debug", "Warning", "CRITICAL"])
def test_log_levels_are_accepted_in_any_case(level: str) -> None:
    assert settings_from_mapping({"GROUNDSTATION_LOG_LEVEL": level}).log_level == level.upper()


def test_an_unknown_log_level_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="GROUNDSTATION_LOG_LEVEL: expected one of DEBUG"):
        settings_from_mapping({"GROUNDSTATION_LOG_LEVEL": "verbose"})
