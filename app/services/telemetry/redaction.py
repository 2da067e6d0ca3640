"""Redaction of request parameters (docs/protocol.md §10, "Redaction of request
parameters"): secret-looking `tool_params` of request-log events, and the names
the installation's server marks secret, are replaced before anything stores or
publishes them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from app.models import McpServer
from app.services.telemetry.model import Event

REDACTED = "[REDACTED]"
# Normalised (lower case, no "_"/"-") fragments that make a tool_params key secret.
_SECRET_FRAGMENTS = ("authorization", "token", "password", "secret", "apikey")
_SCHEMA_FIELDS = tuple(
    f"{tier}_{kind}_schema"
    for tier in ("team", "user") for kind in ("args", "env", "headers", "url_query_params")
)


async def redact_request_logs(events: Iterable[Event]) -> None:
    """Redact `tool_params` of request-log events before anything stores or publishes them.

    Secret-looking keys always; also the names the installation's server marks
    secret in any of its schemas (one query for the batch).
    """
    logs = [event for event in events if event.type == "mcp.request.logs"]
    if not logs:
        return
    server_ids = {event.installation.server_id for event in logs if event.installation}
    names: dict[str, frozenset[str]] = {}
    if server_ids:
        rows = await McpServer.filter(id__in=list(server_ids)).values("id", *_SCHEMA_FIELDS)
        for row in rows:
            names[str(row["id"])] = frozenset(
                _normalise(entry["name"])
                for name in _SCHEMA_FIELDS
                for entry in (row[name] if isinstance(row[name], list) else [])
                if isinstance(entry, dict) and entry.get("secret")
                and isinstance(entry.get("name"), str)
            )
    for event in logs:
        secrets = names.get(event.installation.server_id, frozenset()) if event.installation \
            else frozenset()
        event.data = {
            **event.data,
            "requests": [
                {**item, "tool_params": redact(item["tool_params"], secrets)}
                if isinstance(item, dict) and "tool_params" in item else item
                for item in event.data["requests"]
            ],
        }


def _normalise(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


def redact(value: Any, secret_names: frozenset[str] = frozenset(), depth: int = 0) -> Any:
    """Replace values under secret-looking keys (and schema secrets), at any depth."""
    if depth > 20:
        return REDACTED
    if isinstance(value, dict):
        cleaned: dict[str, Any] = {}
        for key, item in value.items():
            normal = _normalise(str(key))
            if normal in secret_names or any(part in normal for part in _SECRET_FRAGMENTS):
                cleaned[key] = REDACTED
            else:
                cleaned[key] = redact(item, secret_names, depth + 1)
        return cleaned
    if isinstance(value, list):
        return [redact(item, secret_names, depth + 1) for item in value]
    return value
