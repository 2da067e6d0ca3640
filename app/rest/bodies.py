"""Reading request bodies: the whole body up to a limit, then strict JSON.

One reader for every route that takes a body (satellite REST, registration,
GraphQL), so each gets the same answers (docs/protocol.md "Errors"):

- more than the route's limit → 413, whether announced by `Content-Length` or
  not (a chunked body is counted as it arrives, and never held beyond the limit);
- not UTF-8, not JSON, nested deeper than `MAX_JSON_DEPTH`, or not an object
  → 400 with a message saying which;
- a lone UTF-16 surrogate escaped in a string (`"\ud800"`, which JavaScript's
  `JSON.stringify` emits for broken text) becomes U+FFFD: it cannot be stored or
  encoded, and refusing a whole event batch for one broken log line would lose
  the rest.

A body arriving in many small TCP writes is read to its end: a single
`StreamReader.read(n)` returns only what is buffered so far.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from app.errors import PayloadTooLarge, ValidationError

MAX_JSON_DEPTH = 64
_CHUNK_BYTES = 64 * 1024
# An escaped surrogate (\uD800-\uDFFF); valid pairs decode to one character, lone ones stay.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"Request body exceeds {max_bytes} bytes")


async def read_body(request: web.Request, max_bytes: int) -> bytes:
    """The whole body, or `PayloadTooLarge` as soon as it passes `max_bytes`."""
    declared = request.content_length
    if declared is not None and declared > max_bytes:
        raise too_large(max_bytes)
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(_CHUNK_BYTES):
        size += len(chunk)
        if size > max_bytes:
            raise too_large(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(raw: bytes | str, what: str = "Request body") -> Any:
    """Strict JSON (UTF-8, bounded nesting, lone surrogates replaced), any top-level value."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValidationError(
                f"{what} is not valid UTF-8 (byte {error.start})") from error
        encoded = raw
    else:
        text = raw
        encoded = raw.encode("utf-8", "surrogatepass")
    if not text.strip():
        raise ValidationError(f"{what} is empty; send a JSON object")
    try:
        value = json.loads(text)
    except RecursionError as error:
        raise ValidationError(
            f"{what} is nested deeper than {MAX_JSON_DEPTH} levels") from error
    except ValueError as error:
        raise ValidationError(f"{what} is not valid JSON: {error}") from error
    _check_depth(value, encoded, what)
    if _SURROGATE_ESCAPE.search(encoded):
        return _without_lone_surrogates(value)
    return value


def parse_json_object(raw: bytes | str, what: str = "Request body") -> dict[str, Any]:
    value = parse_json(raw, what)
    if not isinstance(value, dict):
        raise ValidationError(f"{what} must be a JSON object, not {_json_kind(value)}")
    return value


async def read_json_object(request: web.Request, max_bytes: int) -> dict[str, Any]:
    return parse_json_object(await read_body(request, max_bytes))


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array"


def _check_depth(value: Any, encoded: bytes, what: str) -> None:
    # Fewer brackets than the limit cannot nest deeper than it: most bodies stop here.
    if encoded.count(b"{") + encoded.count(b"[") <= MAX_JSON_DEPTH:
        return
    level = [value]
    depth = 0
    while level:  # one level of containers at a time: no per-node tuples, no recursion
        depth += 1
        if depth > MAX_JSON_DEPTH:
            raise ValidationError(f"{what} is nested deeper than {MAX_JSON_DEPTH} levels")
        deeper = []
        for node in level:
            kind = type(node)
            if kind is dict:
                children = node.values()
            elif kind is list:
                children = node
            else:
                continue
            for child in children:
                child_kind = type(child)
                if child_kind is dict or child_kind is list:
                    deeper.append(child)
        level = deeper


def _without_lone_surrogates(value: Any) -> Any:
    """`value` with every unpaired surrogate in its strings (keys too) replaced by U+FFFD.
    Recursion is bounded: the depth was checked first."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return _replace_surrogates(value)
        return value
    if isinstance(value, list):
        return [_without_lone_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {_without_lone_surrogates(key): _without_lone_surrogates(item)
                for key, item in value.items()}
    return value


def _replace_surrogates(text: str) -> str:
    return "".join("\ufffd" if "\ud800" <= char <= "\udfff" else char for char in text)


__all__ = [
    "MAX_JSON_DEPTH",
    "parse_json",
    "parse_json_object",
    "read_body",
    "read_json_object",
    "too_large",
]
