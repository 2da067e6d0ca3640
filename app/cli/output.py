"""What the CLI prints: REST wire forms (lower-case enums, ISO times with `Z`, `null`).

Every listing is built as a list of flat dicts first, then shown either as one
JSON array or as an aligned table with the same column names.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from typing import Any

from app.models import RegistrationToken, Satellite
from app.services.common.clock import iso

Row = dict[str, Any]

SATELLITE_COLUMNS = (
    "id", "name", "satellite_type", "team_id", "status", "online", "last_heartbeat_at",
)
TOKEN_COLUMNS = (
    "id", "scope", "team_id", "satellite_name", "created_at", "expires_at",
    "used_at", "used_by_satellite_id", "revoked_at",
)


def wire_value(value: Any) -> Any:
    """A value as the REST API shows it."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return iso(value)
    return value


def satellite_row(satellite: Satellite) -> Row:
    return {
        "id": satellite.id,
        "name": satellite.name,
        "satellite_type": wire_value(satellite.satellite_type),
        "team_id": satellite.team_id,  # type: ignore[attr-defined]
        "status": wire_value(satellite.status),
        "online": satellite.online,
        "last_heartbeat_at": wire_value(satellite.last_heartbeat_at),
    }


def token_row(token: RegistrationToken) -> Row:
    """A token's public fields; the token value itself is never stored, so never shown."""
    return {
        "id": token.jti,
        "scope": wire_value(token.scope),
        "team_id": token.team_id,  # type: ignore[attr-defined]
        "satellite_name": token.satellite_name,
        "created_at": wire_value(token.created_at),
        "expires_at": wire_value(token.expires_at),
        "used_at": wire_value(token.used_at),
        "used_by_satellite_id": token.used_by_satellite_id,
        "revoked_at": wire_value(token.revoked_at),
    }


def render_json(rows: Sequence[Row]) -> str:
    """One JSON array on one line, so the last line of stdout is the whole result."""
    return json.dumps(list(rows))


def _cell(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return json.dumps(value)  # null / true / false, as in the JSON form
    return str(value)


def render_table(rows: Sequence[Row], columns: Sequence[str]) -> str:
    """Left-aligned columns separated by two spaces; a header line even when empty."""
    cells = [[_cell(row[column]) for column in columns] for row in rows]
    widths = [
        max([len(column), *(len(line[index]) for line in cells)])
        for index, column in enumerate(columns)
    ]
    lines = [list(columns), *cells]
    return "\n".join(
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def render_csv(rows: Sequence[Row], columns: Sequence[str]) -> str:
    """A header line, then one line per row (empty cells for missing values)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(column) is None else row.get(column)
                         for column in columns])
    return buffer.getvalue().rstrip("\n")


def render_rows(rows: Sequence[Row], columns: Sequence[str], *, as_json: bool) -> str:
    return render_json(rows) if as_json else render_table(rows, columns)


def write_result(text: str) -> None:
    """The result alone on stdout (nothing for an empty result)."""
    if not text:
        return
    try:
        print(text, flush=True)
    except BrokenPipeError:  # `groundstation satellites | head -1`: the reader left early
        # Python's documented recipe: no second error when stdout is flushed at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
