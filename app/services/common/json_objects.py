"""The one check for free-form JSON objects a client stores (command payloads, settings)."""

from __future__ import annotations

import json
from typing import Any

from app.errors import ValidationError


def checked_json_object(value: Any, *, what: str, field: str, max_bytes: int) -> dict[str, Any]:
    """`value` if it is a JSON object (no NaN/Infinity) of at most `max_bytes` encoded."""
    if not isinstance(value, dict):
        raise ValidationError(f"{what} must be a JSON object",
                              details=[{"field": field, "message": "not an object"}])
    try:
        encoded = json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as error:
        raise ValidationError(f"{what} is not valid JSON: {error}",
                              details=[{"field": field, "message": "not JSON"}]) from error
    if len(encoded.encode()) > max_bytes:
        raise ValidationError(f"{what} exceeds {max_bytes} bytes",
                              details=[{"field": field, "message": "too large"}])
    return value
