"""What the read commands print: each object as a flat dict in the REST wire forms
(lower-case enums, ISO times with `Z`, `null`), listed as a table or a JSON array,
shown as `field  value` lines (nested lists as tables) or one JSON object.

Never shown: password hashes, API key hashes, token digests, decrypted secrets
(an installation shows the masked preview a person sees over GraphQL).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from app.cli.output import Row, render_table, wire_value
from app.models import (
    McpInstallation,
    McpServer,
    Satellite,
    SatelliteCommand,
    SatelliteConfigState,
    SatelliteProcess,
    Team,
    TeamMembership,
    User,
)
from app.services.mcp.config_merge import SCHEMA_FIELDS

TEAM_COLUMNS = ("id", "slug", "name", "created_at")
MEMBER_COLUMNS = ("user_id", "email", "role", "since")
USER_COLUMNS = ("id", "email", "global_role", "created_at")
MEMBERSHIP_COLUMNS = ("team_id", "team_slug", "role", "since")
SERVER_COLUMNS = ("id", "slug", "name", "transport_type", "updated_at")
INSTALLATION_COLUMNS = ("id", "name", "team", "server", "status", "enabled", "revision",
                        "pinned_satellite_id")
COMMAND_COLUMNS = ("id", "satellite_id", "command_type", "priority", "status", "attempts",
                   "created_at", "completed_at")
PROCESS_COLUMNS = ("process_id", "server_name", "installation_id", "team_id", "status",
                   "health_status", "last_reported_at")


def _values(row: Any, names: Sequence[str]) -> Row:
    return {name: wire_value(getattr(row, name)) for name in names}


def team_row(team: Team) -> Row:
    return _values(team, ("id", "slug", "name", "max_processes", "max_memory_per_process_mb",
                          "max_cpu_percent", "created_at", "updated_at"))


def member_row(membership: TeamMembership) -> Row:
    return {"user_id": membership.user.id, "email": membership.user.email,
            "role": wire_value(membership.role), "since": wire_value(membership.created_at)}


def user_row(user: User) -> Row:
    """A person's public fields: never the password hash."""
    return _values(user, ("id", "email", "global_role", "created_at", "updated_at"))


def membership_row(membership: TeamMembership) -> Row:
    return {"team_id": membership.team.id, "team_slug": membership.team.slug,
            "role": wire_value(membership.role), "since": wire_value(membership.created_at)}


def server_row(server: McpServer, *, full: bool = False) -> Row:
    row = _values(server, ("id", "slug", "name", "transport_type", "created_at", "updated_at"))
    if full:
        row.update(_values(server, ("description", "command", "args", "env", "url", "headers",
                                    "url_query_params", "timeout_ms", *SCHEMA_FIELDS)))
    return row


def installation_row(installation: McpInstallation) -> Row:
    row = _values(installation, ("id", "name", "status", "enabled", "revision"))
    row.update({
        "team": installation.team.slug, "team_id": installation.team.id,
        "server": installation.server.slug,
        "pinned_satellite_id": installation.pinned_satellite_id,  # type: ignore[attr-defined]
        "owner_id": installation.owner_id,  # type: ignore[attr-defined]
        "updated_at": wire_value(installation.updated_at),
    })
    return row


def command_row(command: SatelliteCommand, *, full: bool = False) -> Row:
    row = _values(command, ("id", "command_type", "priority", "status", "attempts",
                            "created_at", "completed_at"))
    row["satellite_id"] = command.satellite_id  # type: ignore[attr-defined]
    if full:
        row["team_id"] = command.team_id  # type: ignore[attr-defined]
        row.update(_values(command, (
            "max_attempts", "payload", "result", "error_message", "reported_status", "late",
            "delivered_at", "lease_expires_at", "expires_at", "correlation_id", "updated_at")))
    return row


def satellite_details(satellite: Satellite) -> Row:
    row = _values(satellite, (
        "id", "name", "satellite_type", "status", "online", "reported_status",
        "last_heartbeat_at", "version", "satellite_url", "capabilities", "labels",
        "process_count", "error_count", "key_generation", "registered_at", "updated_at"))
    row["team_id"] = satellite.team_id  # type: ignore[attr-defined]
    return row


def process_row(process: SatelliteProcess) -> Row:
    row = _values(process, ("process_id", "server_name", "installation_id", "status",
                            "health_status", "os_pid", "error_message", "started_at",
                            "last_reported_at"))
    row["team_id"] = process.team_id  # type: ignore[attr-defined]
    return row


def config_state_row(state: SatelliteConfigState | None) -> Row | None:
    if state is None:
        return None
    return _values(state, ("refreshed_at", "config_hash", "server_count", "teams_count",
                           "change_detected", "fetch_duration_ms", "error_at", "error_type",
                           "error_message", "error_status_code"))


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)  # null, true, numbers, objects, lists


def render_record(record: Mapping[str, Any], lists: Mapping[str, Sequence[str]], *,
                  as_json: bool) -> str:
    """One object: as one JSON object, or `field  value` lines with each list in `lists`
    (name → its columns) as a table under its name."""
    if as_json:
        return json.dumps(record, sort_keys=False)
    width = max(len(key) for key in record if key not in lists)
    lines = [f"{key.ljust(width)}  {_text(value)}" for key, value in record.items()
             if key not in lists]
    for name, columns in lists.items():
        rows = record[name]
        lines += ["", f"{name} ({len(rows)})", render_table(rows, columns)] if rows else [
            "", f"{name}: none"]
    return "\n".join(lines)
