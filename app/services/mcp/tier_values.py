"""Checking and sealing the values a team or user tier saves (before they are stored).

`seal_tier` is the one place values become storable: it enforces the limits and
the tier's schema (`config_merge.validate_tier`), encrypts every value of a
secret field with the key ring, and keeps the stored token when a value did not
change (so an unchanged save stays unchanged, byte for byte, and makes no
revision). The mask (`********`, what people see of a secret) means "keep the
stored value".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.auth.secrets import SecretBox, SecretDecryptionError, is_encrypted
from app.errors import ValidationError
from app.services.common.json_objects import checked_json_object
from app.services.mcp.config_merge import (
    DICT_KINDS,
    MASK,
    Tier,
    schema_for,
    secret_field_names,
    validate_tier,
)

MAX_ENTRIES_PER_KIND = 100
MAX_VALUE_LENGTH = 8_192
MAX_SETTINGS_BYTES = 16_384


def empty_tier() -> dict[str, Any]:
    return {"args": [], "env": {}, "headers": {}, "url_query_params": {}}


def tier_of(row: Any) -> dict[str, Any]:
    """The stored tier values of an installation or user-config row."""
    return {
        "args": list(row.args or []),
        "env": dict(row.env or {}),
        "headers": dict(row.headers or {}),
        "url_query_params": dict(row.url_query_params or {}),
    }


def _limit_errors(tier: Tier, values: Mapping[str, Any]) -> list[str]:
    errors: list[str] = []
    for kind in ("args", *DICT_KINDS):
        given = values.get(kind)
        if isinstance(given, list | dict) and len(given) > MAX_ENTRIES_PER_KIND:
            errors.append(f"{tier} {kind}: at most {MAX_ENTRIES_PER_KIND} entries")
        items = given if isinstance(given, list) else (
            list(given.values()) if isinstance(given, dict) else []
        )
        if any(isinstance(item, str) and len(item) > MAX_VALUE_LENGTH for item in items):
            errors.append(f"{tier} {kind}: values have at most {MAX_VALUE_LENGTH} characters")
        names = list(given) if isinstance(given, dict) else []
        if any(isinstance(name, str) and len(name) > 255 for name in names):
            errors.append(f"{tier} {kind}: names have at most 255 characters")
    return errors


def _refuse(errors: list[str]) -> ValidationError:
    return ValidationError(
        "Invalid configuration: " + "; ".join(errors),
        details=[{"field": error.split(":", 1)[0], "message": error} for error in errors],
    )


def seal_tier(
    box: SecretBox,
    template: Mapping[str, Any],
    tier: Tier,
    given: Mapping[str, Any],
    stored: Mapping[str, Any],
) -> dict[str, Any]:
    """The values to store for one tier: `given` over `stored`, checked and sealed.

    Kinds absent from `given` (or `None`) keep their stored values. Raises
    ValidationError naming every problem; nothing is returned half-checked.
    """
    values: dict[str, Any] = {kind: given[kind] for kind in ("args", *DICT_KINDS)
                              if given.get(kind) is not None}
    errors = _limit_errors(tier, values) + validate_tier(template, tier, values)
    if errors:
        raise _refuse(errors)
    sealed = {kind: stored.get(kind) for kind in ("args", *DICT_KINDS)}
    problems: list[str] = []
    for kind in DICT_KINDS:
        if kind in values:
            secrets = secret_field_names(template, kind)
            old = stored.get(kind) or {}
            folded_old = {_fold(kind, name): value for name, value in old.items()}
            sealed[kind] = {
                name: _seal(box, f"{tier} {kind} {name}", value,
                            _fold(kind, name) in secrets, folded_old.get(_fold(kind, name)),
                            problems)
                for name, value in values[kind].items()
            }
    if "args" in values:
        schema = schema_for(template, tier, "args") or []
        old_args = list(stored.get("args") or [])
        sealed["args"] = [
            _seal(box, f"{tier} args {position + 1}", value,
                  position < len(schema) and schema[position].secret,
                  old_args[position] if position < len(old_args) else None, problems)
            for position, value in enumerate(values["args"])
        ]
    if problems:
        raise _refuse(problems)
    return {kind: (value if value is not None else ([] if kind == "args" else {}))
            for kind, value in sealed.items()}


def _seal(box: SecretBox, label: str, value: str, secret: bool, old: Any,
          problems: list[str]) -> str:
    if is_encrypted(value):
        problems.append(f"{label}: values shaped like encrypted secrets (enc:v1:…) "
                        "cannot be stored")
        return value
    if not secret:
        if value == MASK and is_encrypted(old):
            return str(old)  # a previously secret field shown masked, sent back unchanged
        return value
    if value == MASK:
        if is_encrypted(old):
            return str(old)
        problems.append(f"{label}: is a secret with no stored value; give its real value "
                        "instead of the mask")
        return value
    if is_encrypted(old):
        try:
            if box.decrypt(str(old)) == value:
                return str(old)
        except SecretDecryptionError:
            pass  # unreadable old value: replace it
    return box.encrypt(value)


def _fold(kind: str, name: str) -> str:
    return name.lower() if kind == "headers" else name


def checked_settings(settings: Any) -> dict[str, Any]:
    """Installation settings: a JSON object of at most 16 KiB."""
    return checked_json_object(settings, what="settings", field="settings",
                               max_bytes=MAX_SETTINGS_BYTES)


__all__ = [
    "MAX_ENTRIES_PER_KIND",
    "MAX_SETTINGS_BYTES",
    "MAX_VALUE_LENGTH",
    "checked_settings",
    "empty_tier",
    "seal_tier",
    "tier_of",
]
