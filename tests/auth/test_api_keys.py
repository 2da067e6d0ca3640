"""Satellite API keys: format, key id, hashing (docs/protocol.md §5)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.auth.api_keys import (
    KEY_ID_LENGTH,
    generate_api_key,
    hash_api_key,
    parse_api_key,
    verify_api_key,
)
from app.models.enums import SatelliteType

KEY_RE = re.compile(r"^deploystack_satellite_api_(global|team)_[A-Za-z0-9_-]{32}$")


@pytest.mark.parametrize("satellite_type", list(SatelliteType))
def test_generated_key_has_the_reference_format(satellite_type: SatelliteType) -> None:
    api_key, key_id = generate_api_key(satellite_type)
    match = KEY_RE.match(api_key)
    assert match is not None
    assert match.group(1) == satellite_type.value
    assert len(key_id) == KEY_ID_LENGTH
    assert (
        api_key.removeprefix(f"deploystack_satellite_api_{satellite_type.value}_")[:KEY_ID_LENGTH]
        == key_id
    )


def test_parse_returns_type_and_key_id() -> None:
    api_key, key_id = generate_api_key(SatelliteType.TEAM)
    parsed = parse_api_key(api_key)
    assert parsed is not None
    assert parsed.satellite_type is SatelliteType.TEAM
    assert parsed.key_id == key_id


def test_keys_are_unique() -> None:
    keys = {generate_api_key(SatelliteType.GLOBAL)[0] for _ in range(500)}
    assert len(keys) == 500


@pytest.mark.parametrize(
    "presented",
    [
        "",
        "deploystack_satellite_api_global_",
        "deploystack_satellite_api_global_" + "a" * 31,
        "deploystack_satellite_api_global_" + "a" * 33,
        "deploystack_satellite_api_other_" + "a" * 32,
        "deploystack_satellite_api_global_" + "a" * 31 + "!",
        "deploystack_satellite_global_" + "a" * 32,
        " deploystack_satellite_api_global_" + "a" * 32,
    ],
)
def test_malformed_keys_do_not_parse(presented: str) -> None:
    assert parse_api_key(presented) is None


def test_hash_verifies_the_key_and_nothing_else() -> None:
    api_key, _ = generate_api_key(SatelliteType.GLOBAL)
    stored = hash_api_key(api_key)
    assert stored.startswith("$argon2id$")
    assert api_key not in stored
    assert verify_api_key(stored, api_key)
    assert not verify_api_key(stored, api_key[:-1] + ("A" if api_key[-1] != "A" else "B"))


def test_verify_against_a_malformed_hash_is_false_not_an_error() -> None:
    api_key, _ = generate_api_key(SatelliteType.GLOBAL)
    assert not verify_api_key("not-a-hash", api_key)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_parsing_arbitrary_text_never_raises(text: str) -> None:
    parsed = parse_api_key(text)
    assert parsed is None or KEY_RE.match(text)
