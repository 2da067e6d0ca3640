"""Typed settings, read once at start-up from the environment (and a `.env` file).

Nothing else in the code reads `os.environ`: the CLI and the server call
`load_settings()` once and pass the frozen result down.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

SECRET_KEY_FILE_SUFFIX = ".secret"
# The default database's file name inside the data directory (docs/operations.md §1).
DATABASE_FILE_NAME = "groundstation.db"
_APP_DIR_NAME = "groundstation"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def default_data_dir(environ: Mapping[str, str]) -> Path:
    """The per-user data directory of the XDG Base Directory specification:
    `$XDG_DATA_HOME/groundstation` (an absolute XDG_DATA_HOME only, as the specification
    says), else `~/.local/share/groundstation`."""
    xdg_data_home = environ.get("XDG_DATA_HOME", "")
    if xdg_data_home and Path(xdg_data_home).is_absolute():
        return Path(xdg_data_home) / _APP_DIR_NAME
    home = environ.get("HOME") or str(Path.home())
    return Path(home) / ".local" / "share" / _APP_DIR_NAME


@dataclass(frozen=True, slots=True)
class Settings:
    # Unset (""): `sqlite://<data_dir>/groundstation.db`, filled in on construction.
    database_url: str = ""
    # Where the default database and its key file live, whatever directory a command runs
    # in. Unset (""): the per-user data directory (`default_data_dir`).
    data_dir: str = ""
    # PostgreSQL connection pool per process (ignored on SQLite); `minsize`/`maxsize`
    # in DATABASE_URL's query take precedence.
    db_pool_min: int = 2
    db_pool_max: int = 20
    redis_url: str | None = None
    secret_key: str | None = None
    encryption_keys: tuple[str, ...] = ()
    issuer: str = "groundstation"
    host: str = "127.0.0.1"
    port: int = 3000
    trusted_proxies: tuple[IPNetwork, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()
    metrics_token: str | None = None
    debug: bool = False
    log_level: str = "INFO"
    # Access log (docs/operations.md §6): one JSON line per request; the hot satellite
    # routes are sampled, errors and slow requests always logged.
    access_log: bool = True
    access_log_sample_rate: float = 0.01
    access_log_slow_ms: float = 1000.0

    # Satellite cadence and liveness
    heartbeat_interval: int = 30
    offline_threshold: int = 90
    # Commands
    command_lease_seconds: int = 300
    command_expiry_seconds: int = 300
    command_max_attempts: int = 3
    long_poll_max_seconds: int = 30
    # Retention (by count and by age)
    heartbeat_history_per_satellite: int = 1000
    heartbeat_retention_days: int = 30
    event_retention_per_satellite: int = 10_000
    event_retention_days: int = 30
    audit_retention_days: int = 365
    process_retention_days: int = 7
    command_retention_days: int = 30
    metrics_minute_retention_days: int = 2
    metrics_hour_retention_days: int = 90
    # Request limits
    max_body_bytes: int = 1024 * 1024
    max_event_body_bytes: int = 8 * 1024 * 1024
    graphql_max_body_bytes: int = 128 * 1024
    # Authentication
    auth_failure_limit: int = 30
    auth_failure_window_seconds: int = 60
    key_cache_ttl_seconds: int = 3600
    key_cache_negative_ttl_seconds: int = 30
    key_verify_concurrency: int = 2
    # People: sessions expire after this long without use; failed logins are limited
    session_idle_seconds: int = 7 * 24 * 3600
    # Verified sessions are remembered this long (evicted at once over the bus on logout
    # and membership changes; changes by another process show within this time).
    session_cache_seconds: float = 5.0
    login_failure_limit: int = 10
    login_failure_window_seconds: int = 300
    # Argon2id cost of people's password hashes (argon2-cffi's defaults, RFC 9106's
    # low-memory profile); hashes made at another cost are redone at the next login.
    password_hash_time_cost: int = 3
    password_hash_memory_kib: int = 64 * 1024
    password_hash_parallelism: int = 4
    # Per-satellite token buckets (requests per second, burst)
    poll_rate_per_second: float = 1.0
    poll_burst: int = 30
    events_rate_per_second: float = 1.0
    events_burst: int = 20
    # Internal cadence
    flush_interval_seconds: float = 1.0
    flush_buffer_limit: int = 100_000
    state_refresh_seconds: float = 1.0
    jobs_interval_seconds: float = 5.0
    # Alerts and webhooks (docs/alerts.md)
    webhook_interval_seconds: float = 1.0
    webhook_retry_base_seconds: float = 5.0
    webhook_max_attempts: int = 8
    webhook_disable_after: int = 3
    webhook_timeout_seconds: float = 10.0
    webhook_allow_private: bool = False
    retention_interval_seconds: float = 3600.0
    shutdown_timeout_seconds: float = 10.0

    def __post_init__(self) -> None:
        # The one place the defaults that depend on the user are worked out (the home
        # directory is the process's, like the rest of the environment).
        data_dir = self.data_dir or str(default_data_dir(os.environ))
        object.__setattr__(self, "data_dir", data_dir)
        if not self.database_url:
            object.__setattr__(self, "database_url",
                               f"sqlite://{Path(data_dir) / DATABASE_FILE_NAME}")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite://")

    @property
    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite:
            return None
        raw = self.database_url.removeprefix("sqlite://").split("?", 1)[0]
        return None if raw in ("", ":memory:") else Path(raw)

    @property
    def in_data_dir(self) -> bool:
        """The database is the default file in the data directory (DATABASE_URL unset or
        naming that file): the commands that may create a database may create the data
        directory too. A directory named by DATABASE_URL alone is never created."""
        return self.sqlite_path == Path(self.data_dir) / DATABASE_FILE_NAME


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected a boolean, got {raw!r}")


def _parse_list(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _parse_networks(raw: str) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in _parse_list(raw))


def _parse_log_level(raw: str) -> str:
    level = raw.strip().upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}, got {raw!r}")
    return level


# Variables with fixed, documented names (the README's Settings table); every other field
# is read from GROUNDSTATION_<FIELD> (see `env_name`).
_ENV_NAMES: dict[str, str] = {
    "database_url": "DATABASE_URL",
    "redis_url": "REDIS_URL",
    "secret_key": "SECRET_KEY",
    "encryption_keys": "ENCRYPTION_KEYS",
    "issuer": "GROUNDSTATION_ISSUER",
    "host": "GROUNDSTATION_HOST",
    "port": "GROUNDSTATION_PORT",
    "trusted_proxies": "TRUSTED_PROXIES",
    "allowed_origins": "ALLOWED_ORIGINS",
    "cors_origins": "CORS_ORIGINS",
    "metrics_token": "METRICS_TOKEN",
}

_PARSERS: dict[str, Callable[[str], Any]] = {
    "encryption_keys": _parse_list,
    "trusted_proxies": _parse_networks,
    "allowed_origins": _parse_list,
    "cors_origins": _parse_list,
    "log_level": _parse_log_level,
}


def env_name(field_name: str) -> str:
    return _ENV_NAMES.get(field_name, f"GROUNDSTATION_{field_name.upper()}")


def _read_dotenv(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or "=" not in stripped:
            continue
        key, _, value = stripped.partition("=")
        values[key.strip().removeprefix("export ").strip()] = value.strip().strip("'\"")
    return values


def _convert(name: str, annotation: str, raw: str) -> Any:
    if name in _PARSERS:
        return _PARSERS[name](raw)
    if annotation == "bool":
        return _parse_bool(raw)
    if annotation == "int":
        return int(raw)
    if annotation == "float":
        return float(raw)
    if annotation == "str | None":
        return raw or None
    return raw


def settings_from_mapping(env: Mapping[str, str]) -> Settings:
    """Build settings from a mapping of environment variables (no secret resolution)."""
    values: dict[str, Any] = {}
    for spec in fields(Settings):
        raw = env.get(env_name(spec.name))
        if raw is None:
            continue
        try:
            values[spec.name] = _convert(spec.name, str(spec.type), raw)
        except ValueError as exc:
            raise SettingsError(f"{env_name(spec.name)}: {exc}") from exc
    settings = Settings(**values)
    _validate(settings)
    return settings


def _validate(settings: Settings) -> None:
    if not (
        settings.database_url.startswith("sqlite://")
        or settings.database_url.startswith(("postgres://", "postgresql://"))
    ):
        raise SettingsError("DATABASE_URL must start with sqlite:// or postgres://")
    if settings.redis_url is not None and not settings.redis_url.startswith(_REDIS_SCHEMES):
        raise SettingsError("REDIS_URL must start with redis://, rediss:// or unix://")
    if settings.db_pool_min < 1 or settings.db_pool_max < settings.db_pool_min:
        raise SettingsError(
            "GROUNDSTATION_DB_POOL_MIN must be at least 1 and GROUNDSTATION_DB_POOL_MAX "
            "at least GROUNDSTATION_DB_POOL_MIN"
        )
    if settings.heartbeat_interval < 1 or settings.offline_threshold < settings.heartbeat_interval:
        raise SettingsError(
            "GROUNDSTATION_OFFLINE_THRESHOLD must be at least GROUNDSTATION_HEARTBEAT_INTERVAL"
        )
    if (settings.password_hash_time_cost < 1 or settings.password_hash_parallelism < 1
            or settings.password_hash_memory_kib < 8 * settings.password_hash_parallelism):
        raise SettingsError(
            "GROUNDSTATION_PASSWORD_HASH_TIME_COST and GROUNDSTATION_PASSWORD_HASH_PARALLELISM "
            "must be at least 1 and GROUNDSTATION_PASSWORD_HASH_MEMORY_KIB at least 8 per lane"
        )
    if not 0.0 <= settings.access_log_sample_rate <= 1.0:
        raise SettingsError("GROUNDSTATION_ACCESS_LOG_SAMPLE_RATE must be between 0 and 1")
    if not settings.access_log_slow_ms >= 0:  # NaN too
        raise SettingsError("GROUNDSTATION_ACCESS_LOG_SLOW_MS must be 0 or more")
    if settings.secret_key is not None and len(settings.secret_key) < 32:
        raise SettingsError("SECRET_KEY must be at least 32 characters")


def secret_key_file(database: Path) -> Path:
    """Where SECRET_KEY is kept when it is generated: beside the SQLite database."""
    return database.with_name(database.name + SECRET_KEY_FILE_SUFFIX)


def resolve_secret_key(settings: Settings, *, create: bool = True) -> Settings:
    """Fill in SECRET_KEY: explicit, else (SQLite) the 0600 file beside the database,
    generated when missing if `create` (the commands that may create the database);
    otherwise a missing file is an error, since a new key would not open what the
    database holds. The file's directory is never created here."""
    if settings.secret_key:
        return settings
    path = settings.sqlite_path
    if path is None:
        if settings.is_sqlite:  # in-memory database: a process-lifetime key is all it can keep
            return replace(settings, secret_key=secrets.token_urlsafe(48))
        raise SettingsError("SECRET_KEY must be set when DATABASE_URL is not SQLite")
    key_file = secret_key_file(path)
    if not key_file.exists():
        if not create:
            raise SettingsError(
                f"no secret key: {key_file} does not exist (set SECRET_KEY, or put back the "
                "key file this database was created with)")
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(secrets.token_urlsafe(48))
    return replace(settings, secret_key=key_file.read_text(encoding="utf-8").strip())


def read_settings(
    environ: Mapping[str, str] | None = None, dotenv: Path | None = Path(".env")
) -> Settings:
    """Read settings once: `.env` first, the real environment wins. SECRET_KEY is left
    as given (see `resolve_secret_key`)."""
    merged: dict[str, str] = _read_dotenv(dotenv) if dotenv is not None else {}
    merged.update(os.environ if environ is None else environ)
    return settings_from_mapping(merged)


def load_settings(
    environ: Mapping[str, str] | None = None, dotenv: Path | None = Path(".env")
) -> Settings:
    """`read_settings`, with SECRET_KEY resolved (a key file generated when missing)."""
    return resolve_secret_key(read_settings(environ, dotenv))


__all__ = [
    "DATABASE_FILE_NAME", "LOG_LEVELS", "Settings", "SettingsError", "default_data_dir",
    "env_name", "load_settings", "read_settings", "resolve_secret_key", "secret_key_file",
]
