"""Sealing tier values before storage: secrets encrypted, rendering unchanged, limits."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import assume, given, settings

from app.auth.secrets import SecretBox, is_encrypted
from app.errors import ValidationError
from app.services.mcp.config_merge import (
    MASK,
    merge_entry,
    secret_field_names,
    validate_tier,
)
from app.services.mcp.tier_values import (
    MAX_ENTRIES_PER_KIND,
    MAX_VALUE_LENGTH,
    empty_tier,
    seal_tier,
)
from tests.services.test_config_merge import TIER, servers

BOX = SecretBox([os.urandom(32)])
SERVER = {
    "transport_type": "stdio", "command": "run",
    "team_env_schema": [{"name": "TOKEN", "secret": True}, {"name": "MODE"}],
    "team_args_schema": [{"name": "password", "secret": True}, {"name": "path"}],
}


def test_secret_fields_are_sealed_and_plain_ones_kept() -> None:
    sealed = seal_tier(BOX, SERVER, "team",
                       {"env": {"TOKEN": "t0p", "MODE": "fast"}, "args": ["pw", "/p"]},
                       empty_tier())

    assert is_encrypted(sealed["env"]["TOKEN"])
    assert BOX.decrypt(sealed["env"]["TOKEN"]) == "t0p"
    assert sealed["env"]["MODE"] == "fast"
    assert is_encrypted(sealed["args"][0])
    assert sealed["args"][1] == "/p"
    assert sealed["headers"] == {}


def test_an_unchanged_secret_keeps_its_stored_token() -> None:
    first = seal_tier(BOX, SERVER, "team", {"env": {"TOKEN": "same"}}, empty_tier())
    again = seal_tier(BOX, SERVER, "team", {"env": {"TOKEN": "same"}}, first)
    masked = seal_tier(BOX, SERVER, "team", {"env": {"TOKEN": MASK}}, first)
    changed = seal_tier(BOX, SERVER, "team", {"env": {"TOKEN": "other"}}, first)

    assert again == first
    assert masked == first
    assert changed["env"]["TOKEN"] != first["env"]["TOKEN"]


def test_kinds_left_out_keep_their_stored_values() -> None:
    stored = seal_tier(BOX, SERVER, "team", {"env": {"MODE": "a"}, "args": ["x"]}, empty_tier())
    sealed = seal_tier(BOX, SERVER, "team", {"args": ["y"]}, stored)
    assert sealed["env"] == {"MODE": "a"}
    assert BOX.decrypt(sealed["args"][0]) == "y"


@pytest.mark.parametrize(("values", "message"), [
    ({"env": {"TOKEN": MASK}}, "no stored value"),
    ({"env": {"MODE": "enc:v1:abcdef01:" + "A" * 40}}, "encrypted"),
    ({"env": {"OTHER": "x"}}, "may not be set"),
    ({"env": {"MODE": "x" * (MAX_VALUE_LENGTH + 1)}}, "at most"),
    ({"args": ["a", "b", "c"]}, "at most 2"),
])
def test_bad_values_are_refused_with_the_reason(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        seal_tier(BOX, SERVER, "team", values, empty_tier())


def test_too_many_entries_are_refused() -> None:
    values = {"env": {f"K{n}": "v" for n in range(MAX_ENTRIES_PER_KIND + 1)}}
    with pytest.raises(ValidationError, match=f"at most {MAX_ENTRIES_PER_KIND} entries"):
        seal_tier(BOX, {"transport_type": "stdio", "command": "x"}, "team", values, empty_tier())


def _plain(value: str) -> bool:
    return value != MASK and not value.startswith("enc:")


@settings(max_examples=150, deadline=None)
@given(server=servers(), team=TIER, user=TIER)
def test_sealing_never_changes_what_the_satellite_receives(
    server: dict[str, Any], team: dict[str, Any], user: dict[str, Any]
) -> None:
    for values in (team, user):
        assume(all(_plain(v) for kind in ("env", "headers", "url_query_params")
                   for v in values.get(kind, {}).values()))
        assume(all(_plain(v) for v in values.get("args", [])))
    assume(not validate_tier(server, "team", team) and not validate_tier(server, "user", user))
    sealed_team = seal_tier(BOX, server, "team", team, empty_tier())
    sealed_user = seal_tier(BOX, server, "user", user, empty_tier())

    plain = merge_entry(server, team, user)
    opened = merge_entry(server, sealed_team, sealed_user, decrypt=BOX.decrypt)

    assert opened.to_wire() == plain.to_wire()
    for tier in (sealed_team, sealed_user):
        for kind in ("env", "headers", "url_query_params"):
            secrets = secret_field_names(server, kind)
            for name, value in tier[kind].items():
                folded = name.lower() if kind == "headers" else name
                assert is_encrypted(value) == (folded in secrets)

