"""The template → team → user merge of an MCP server entry (docs/protocol.md §9), as pure functions.

Inputs are plain dicts, so the renderer, previews, the CLI and tests share one
implementation:

- a **server template** (`TEMPLATE_FIELDS`: `transport_type`, `command`, `args`,
  `env`, `url`, `headers`, `url_query_params`, `timeout_ms` and the eight schema
  lists `{team,user}_{args,env,headers,url_query_params}_schema`);
- a **team tier** and a **user tier**, each `{"args": [...], "env": {...},
  "headers": {...}, "url_query_params": {...}}` (missing or `None` kinds are empty,
  other keys are ignored).

Rules:

- `env`, `headers` and URL query parameters merge key by key, later tiers
  winning. Header names are case-insensitive (HTTP): `authorization` set by the
  user replaces the team's `Authorization`, and the winning tier's spelling is
  kept. Env names and query parameter names are case-sensitive.
- `args` append: template, then team, then user; no positional replacement.
- Schemas. A schema list is `[{"name", "required"?, "secret"?, "description"?}]`.
  `None` (absent) means the tier may set anything of that kind; a list (even
  empty) means only the names listed. **Args schemas are positional**: entry *i*
  describes the tier's *i*-th arg (counted within that tier's own args), so a
  tier with an args schema of length *n* may give at most *n* args; entry *i*
  `required` means the tier must give a non-empty arg at position *i*; entry *i*
  `secret` masks that arg in previews (args are not listed in `secret_metadata`,
  which docs/protocol.md §9 defines for env/headers/query_params only).
- Required dict fields are checked **after** the merge (a template default or
  the other tier may satisfy them); `None` or `""` counts as missing.
- Schemas are enforced when values are **saved** (`validate_tier`); the merge
  itself trusts stored values and never drops them.
- Any value that is an encrypted token (`app.auth.secrets.is_encrypted`) is
  opened with the `decrypt` callable given to `merge_entry`, whatever the
  schema says (a field's secret flag may change after values were stored). The
  storage layer must encrypt every value of a `secret` field (and should refuse
  plain values that look like tokens, `enc:v1:…`).
- `mask=True` (previews): values of secret fields and every encrypted token are
  replaced by `MASK`; `decrypt` is then never called.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

from app.auth.secrets import SecretDecryptionError, is_encrypted

MASK = "********"
# Used for http/sse entries whose template has no timeout_ms.
DEFAULT_TIMEOUT_MS = 30_000

Tier = Literal["team", "user"]
TIERS: tuple[Tier, ...] = ("team", "user")
DICT_KINDS = ("env", "headers", "url_query_params")
FIELD_KINDS = ("args", *DICT_KINDS)
SCHEMA_FIELDS = tuple(f"{tier}_{kind}_schema" for tier in TIERS for kind in FIELD_KINDS)
TEMPLATE_FIELDS = (
    "transport_type", "command", "args", "env", "url", "headers", "url_query_params",
    "timeout_ms", *SCHEMA_FIELDS,
)
# secret_metadata's key for each dict kind (docs/protocol.md §9).
_METADATA_KEYS = {"env": "env", "headers": "headers", "url_query_params": "query_params"}
_STDIO = "stdio"
_REMOTE = ("http", "sse")

Decrypt = Callable[[str], str]


class TierValues(TypedDict, total=False):
    args: list[str]
    env: dict[str, str]
    headers: dict[str, str]
    url_query_params: dict[str, str]


class MergeError(ValueError):
    """The template cannot be rendered (unknown transport, stdio without command, …)."""


@dataclass(frozen=True, slots=True)
class SchemaField:
    name: str
    required: bool = False
    secret: bool = False
    description: str | None = None


@dataclass(frozen=True, slots=True)
class MergedEntry:
    """The transport part of a config entry; `to_wire()` gives its protocol fields."""

    transport_type: str
    command: str | None = None
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    timeout: int | None = None
    secret_metadata: dict[str, list[str]] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        """stdio: command/args/env; http/sse: url/headers/timeout; plus secret_metadata.

        The renderer adds installation_id, names, team, enabled and settings.
        """
        wire: dict[str, Any] = {"transport_type": self.transport_type}
        if self.transport_type == _STDIO:
            wire.update(command=self.command, args=list(self.args), env=dict(self.env))
        else:
            wire.update(url=self.url, headers=dict(self.headers), timeout=self.timeout)
        wire["secret_metadata"] = {key: list(names) for key, names in self.secret_metadata.items()}
        return wire


def process_id(server_slug: str, team_slug: str, installation_id: str) -> str:
    """The satellite's process id for one team installation (docs/protocol.md §9)."""
    return f"{server_slug}-{team_slug}-{installation_id}"


# --- schemas -----------------------------------------------------------------------------


def validate_schema(value: Any, label: str = "schema") -> list[str]:
    """Errors in one schema list as a catalog file gives it (empty = valid; `None` is valid)."""
    if value is None:
        return []
    if not isinstance(value, list):
        return [f"{label}: must be a list of fields"]
    errors: list[str] = []
    names: set[str] = set()
    for position, entry in enumerate(value):  # from 0, like every index we report
        where = f"{label}[{position}]"
        if not isinstance(entry, dict):
            errors.append(f"{where}: must be an object with a name")
            continue
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            errors.append(f"{where}: name must be a non-empty string")
            continue
        folded = name.lower() if "headers" in label else name
        if folded in names:
            errors.append(f"{where}: duplicate name {name!r}")
        names.add(folded)
        for flag in ("required", "secret"):
            if flag in entry and not isinstance(entry[flag], bool):
                errors.append(f"{where}: {flag} must be true or false")
        description = entry.get("description")
        if description is not None and not isinstance(description, str):
            errors.append(f"{where}: description must be a string")
    return errors


def schema_for(server: Mapping[str, Any], tier: Tier, kind: str) -> list[SchemaField] | None:
    """The tier's schema for a field kind, or `None` when the template defines none.

    Malformed entries (not an object, no string name) are skipped here; the
    catalog import rejects them with `validate_schema`.
    """
    _check_tier(tier)
    raw = server.get(f"{tier}_{kind}_schema")
    if raw is None:
        return None
    if not isinstance(raw, list):
        return []
    fields: list[SchemaField] = []
    for entry in raw:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str) and entry["name"]:
            description = entry.get("description")
            fields.append(SchemaField(
                name=entry["name"],
                required=entry.get("required") is True,
                secret=entry.get("secret") is True,
                description=description if isinstance(description, str) else None,
            ))
    return fields


def secret_field_names(server: Mapping[str, Any], kind: str) -> set[str]:
    """Names (header names lower-cased) marked secret in the team or user schema of a kind."""
    names: set[str] = set()
    for tier in TIERS:
        for schema_field in schema_for(server, tier, kind) or []:
            if schema_field.secret:
                names.add(_fold(kind, schema_field.name))
    return names


# --- validation --------------------------------------------------------------------------


def validate_tier(
    server: Mapping[str, Any], tier_name: Tier, values: Mapping[str, Any]
) -> list[str]:
    """Errors in the values one tier wants to save (empty = valid).

    Values must be strings (args a list of strings, the others string → string
    objects). Where the tier's schema for a kind is defined, only its names may
    be set (header names compared case-insensitively) and at most as many args
    as its args schema has entries.
    """
    _check_tier(tier_name)
    errors: list[str] = []
    args = values.get("args")
    if args is not None:
        if not isinstance(args, list) or not all(isinstance(item, str) for item in args):
            errors.append(f"{tier_name} args: must be a list of strings")
        else:
            schema = schema_for(server, tier_name, "args")
            if schema is not None and len(args) > len(schema):
                errors.append(
                    f"{tier_name} args: at most {len(schema)} allowed at this tier, "
                    f"got {len(args)}"
                )
    for kind in DICT_KINDS:
        errors.extend(_validate_mapping(server, tier_name, kind, values.get(kind)))
    return errors


def _validate_mapping(server: Mapping[str, Any], tier: Tier, kind: str, raw: Any) -> list[str]:
    if raw is None:
        return []
    label = f"{tier} {kind}"
    if not isinstance(raw, dict):
        return [f"{label}: must be an object of names to string values"]
    errors: list[str] = []
    schema = schema_for(server, tier, kind)
    allowed = None if schema is None else {_fold(kind, item.name) for item in schema}
    seen: set[str] = set()
    for name, value in raw.items():
        if not isinstance(name, str) or not name:
            errors.append(f"{label}: names must be non-empty strings")
            continue
        if not isinstance(value, str):
            errors.append(f"{label}: value of {name!r} must be a string")
        folded = _fold(kind, name)
        if folded in seen:
            errors.append(f"{label}: {name!r} is given twice (names are case-insensitive)")
        seen.add(folded)
        if allowed is not None and folded not in allowed:
            listed = ", ".join(sorted(item.name for item in schema or [])) or "none"
            errors.append(f"{label}: {name!r} may not be set at this tier (allowed: {listed})")
    return errors


def missing_required(
    server: Mapping[str, Any], team_values: Mapping[str, Any], user_values: Mapping[str, Any]
) -> list[str]:
    """Required fields still absent after the merge (non-empty → `awaiting_config`).

    Dict kinds: a required name must have a non-empty value in the merged result
    (template, team or user). Args: a required positional entry must be given,
    non-empty, in that tier's own args.
    """
    tiers = {"team": team_values, "user": user_values}
    missing: list[str] = []
    for kind in DICT_KINDS:
        merged = _merge_raw(kind, [server.get(kind), team_values.get(kind), user_values.get(kind)])
        for tier in TIERS:
            for schema_field in schema_for(server, tier, kind) or []:
                if schema_field.required:
                    entry = merged.get(_fold(kind, schema_field.name))
                    if entry is None or entry[1] in (None, ""):
                        missing.append(f"{tier} {kind} {schema_field.name} is required")
    for tier in TIERS:
        args = _as_list(tiers[tier].get("args"))
        for position, schema_field in enumerate(schema_for(server, tier, "args") or []):
            if schema_field.required and (position >= len(args) or args[position] in (None, "")):
                missing.append(
                    f"{tier} args {schema_field.name} (position {position + 1}) is required"
                )
    return missing


# --- merge -------------------------------------------------------------------------------


def merge_entry(
    server: Mapping[str, Any],
    team_values: Mapping[str, Any],
    user_values: Mapping[str, Any],
    *,
    decrypt: Decrypt | None = None,
    mask: bool = False,
) -> MergedEntry:
    """Merge template → team → user into one entry (docs/protocol.md §9 rules, see module doc).

    Raises `MergeError` for a template that cannot be rendered and lets
    `SecretDecryptionError` from `decrypt` through (the renderer then serves
    the last good rendering).
    """
    transport = server.get("transport_type")
    transport = getattr(transport, "value", transport)  # TransportType enum or its wire value
    if transport not in (_STDIO, *_REMOTE):
        raise MergeError(f"unknown transport_type {transport!r}")
    tiers = (server, team_values, user_values)

    def resolve(value: Any, secret: bool) -> str:
        text = "" if value is None else str(value)
        if mask and (secret or is_encrypted(text)):
            return MASK
        if is_encrypted(text):
            if decrypt is None:
                raise SecretDecryptionError("an encrypted value needs a decrypt function")
            return decrypt(text)
        return text

    merged: dict[str, dict[str, str]] = {}
    secret_names: dict[str, list[str]] = {}
    for kind in DICT_KINDS:
        secrets = secret_field_names(server, kind)
        values: dict[str, str] = {}
        names: list[str] = []
        for name, value in _merge_raw(kind, [tier.get(kind) for tier in tiers]).values():
            is_secret = _fold(kind, name) in secrets or is_encrypted(value)
            values[name] = resolve(value, is_secret)
            if is_secret:
                names.append(name)
        merged[kind] = values
        secret_names[_METADATA_KEYS[kind]] = sorted(names)

    if transport == _STDIO:
        command = server.get("command")
        if not isinstance(command, str) or not command:
            raise MergeError("a stdio server needs a command")
        args = [resolve(value, False) for value in _as_list(server.get("args"))]
        for tier, values_of_tier in zip(TIERS, (team_values, user_values), strict=True):
            schema = schema_for(server, tier, "args") or []
            for position, value in enumerate(_as_list(values_of_tier.get("args"))):
                secret = position < len(schema) and schema[position].secret
                args.append(resolve(value, secret))
        return MergedEntry(
            transport_type=transport, command=command, args=args, env=merged["env"],
            secret_metadata=_metadata(secret_names, ("env",)),
        )

    url = server.get("url")
    if not isinstance(url, str) or not url:
        raise MergeError(f"an {transport} server needs a url")
    timeout = server.get("timeout_ms")
    return MergedEntry(
        transport_type=transport,
        url=with_query_params(url, merged["url_query_params"]),
        headers=merged["headers"],
        timeout=timeout if isinstance(timeout, int) and timeout > 0 else DEFAULT_TIMEOUT_MS,
        secret_metadata=_metadata(secret_names, ("headers", "query_params")),
    )


def with_query_params(url: str, params: Mapping[str, str]) -> str:
    """`url` with `params` set in its query: each replaces the URL's own values of that name.

    The URL's other query parts keep their original encoding and order; the
    given parameters follow, sorted by name (stable bytes whatever order the
    database returns), percent-encoded (`*` kept, so masks stay readable).
    """
    if not params:
        return url
    parts = urlsplit(url)
    kept = [
        part for part in parts.query.split("&")
        if part and unquote_plus(part.split("=", 1)[0]) not in params
    ]
    added = [
        f"{quote(name, safe='*')}={quote(value, safe='*')}"
        for name, value in sorted(params.items())
    ]
    return urlunsplit(parts._replace(query="&".join(kept + added)))


def _metadata(names: Mapping[str, list[str]], keys: Iterable[str]) -> dict[str, list[str]]:
    return {key: names[key] for key in keys if names[key]}


def _merge_raw(kind: str, layers: Iterable[Any]) -> dict[str, tuple[str, Any]]:
    """Key-by-key merge of raw layers: folded name → (winning spelling, winning value)."""
    merged: dict[str, tuple[str, Any]] = {}
    for layer in layers:
        if isinstance(layer, Mapping):
            for name, value in layer.items():
                merged[_fold(kind, str(name))] = (str(name), value)
    return merged


def _fold(kind: str, name: str) -> str:
    return name.lower() if kind == "headers" else name


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _check_tier(tier: str) -> None:
    if tier not in TIERS:
        raise ValueError(f"tier must be 'team' or 'user', not {tier!r}")


__all__ = [
    "DEFAULT_TIMEOUT_MS",
    "FIELD_KINDS",
    "MASK",
    "SCHEMA_FIELDS",
    "TEMPLATE_FIELDS",
    "TIERS",
    "MergeError",
    "MergedEntry",
    "SchemaField",
    "Tier",
    "TierValues",
    "merge_entry",
    "missing_required",
    "process_id",
    "schema_for",
    "secret_field_names",
    "validate_schema",
    "validate_tier",
    "with_query_params",
]
