"""The template → team → user merge of docs/protocol.md §9 (pure functions)."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.auth.secrets import SecretBox, SecretDecryptionError
from app.services.mcp.config_merge import (
    DEFAULT_TIMEOUT_MS,
    MASK,
    MergeError,
    merge_entry,
    missing_required,
    process_id,
    validate_schema,
    validate_tier,
    with_query_params,
)

BOX = SecretBox([os.urandom(32)])


def stdio_server(**extra: Any) -> dict[str, Any]:
    return {
        "transport_type": "stdio", "command": "npx",
        "args": ["-y", "@modelcontextprotocol/server-filesystem"],
        "env": {"LOG_LEVEL": "info", "MODE": "template"},
        **extra,
    }


def http_server(**extra: Any) -> dict[str, Any]:
    return {
        "transport_type": "http", "url": "https://mcp.example.com/search?v=2",
        "headers": {"X-Client": "groundstation"}, "url_query_params": {"region": "eu"},
        "timeout_ms": 15_000,
        **extra,
    }


# --- tiers and precedence ------------------------------------------------------------------


def test_template_alone_renders_a_stdio_entry() -> None:
    entry = merge_entry(stdio_server(), {}, {})
    assert entry.to_wire() == {
        "transport_type": "stdio", "command": "npx",
        "args": ["-y", "@modelcontextprotocol/server-filesystem"],
        "env": {"LOG_LEVEL": "info", "MODE": "template"},
        "secret_metadata": {},
    }


def test_team_tier_adds_and_overrides_template_env() -> None:
    entry = merge_entry(stdio_server(), {"env": {"MODE": "team", "ROOT_DIR": "/srv"}}, {})
    assert entry.env == {"LOG_LEVEL": "info", "MODE": "team", "ROOT_DIR": "/srv"}


def test_user_tier_wins_over_team_and_template() -> None:
    entry = merge_entry(
        stdio_server(),
        {"env": {"MODE": "team", "ROOT_DIR": "/srv"}},
        {"env": {"MODE": "user", "TOKEN": "t"}},
    )
    assert entry.env == {"LOG_LEVEL": "info", "MODE": "user", "ROOT_DIR": "/srv", "TOKEN": "t"}


def test_args_append_template_then_team_then_user() -> None:
    entry = merge_entry(stdio_server(), {"args": ["/srv", "-v"]}, {"args": ["--user"]})
    assert entry.args == [
        "-y", "@modelcontextprotocol/server-filesystem", "/srv", "-v", "--user",
    ]


def test_headers_merge_case_insensitively_with_the_winning_spelling() -> None:
    entry = merge_entry(
        http_server(),
        {"headers": {"Authorization": "Bearer team", "X-Team": "a"}},
        {"headers": {"authorization": "Bearer user"}},
    )
    assert entry.headers == {
        "X-Client": "groundstation", "authorization": "Bearer user", "X-Team": "a",
    }


def test_http_entry_has_url_headers_and_timeout_but_no_stdio_fields() -> None:
    wire = merge_entry(http_server(), {}, {}).to_wire()
    assert wire == {
        "transport_type": "http",
        "url": "https://mcp.example.com/search?v=2&region=eu",
        "headers": {"X-Client": "groundstation"},
        "timeout": 15_000,
        "secret_metadata": {},
    }


def test_sse_entry_without_timeout_gets_the_default() -> None:
    server = http_server(transport_type="sse", timeout_ms=None, url_query_params={})
    wire = merge_entry(server, {}, {}).to_wire()
    assert wire["transport_type"] == "sse"
    assert wire["timeout"] == DEFAULT_TIMEOUT_MS
    assert wire["url"] == "https://mcp.example.com/search?v=2"


def test_query_params_merge_into_the_url_later_tiers_winning() -> None:
    entry = merge_entry(
        http_server(),
        {"url_query_params": {"region": "us", "team key": "a&b=c"}},
        {"url_query_params": {"v": "3"}},
    )
    assert entry.url == (
        "https://mcp.example.com/search?region=us&team%20key=a%26b%3Dc&v=3"
    )
    assert dict(parse_qsl(urlsplit(entry.url or "").query)) == {
        "region": "us", "team key": "a&b=c", "v": "3",
    }


def test_url_without_params_is_unchanged_and_fragment_kept() -> None:
    assert with_query_params("https://x.test/a?b=%2F#frag", {}) == "https://x.test/a?b=%2F#frag"
    assert with_query_params("https://x.test/a?b=%2F#frag", {"c": "1"}) == (
        "https://x.test/a?b=%2F&c=1#frag"
    )


def test_process_id_joins_server_team_and_installation() -> None:
    assert process_id("filesystem", "acme", "0f" * 16) == f"filesystem-acme-{'0f' * 16}"


def test_unrenderable_templates_raise_merge_error() -> None:
    with pytest.raises(MergeError, match="command"):
        merge_entry(stdio_server(command=None), {}, {})
    with pytest.raises(MergeError, match="url"):
        merge_entry(http_server(url=""), {}, {})
    with pytest.raises(MergeError, match="transport"):
        merge_entry({"transport_type": "websocket"}, {}, {})


# --- schemas -------------------------------------------------------------------------------


def test_without_a_schema_a_tier_may_set_anything() -> None:
    values = {"args": ["a"], "env": {"ANY": "1"}, "headers": {"X": "y"},
              "url_query_params": {"q": "1"}}
    assert validate_tier(stdio_server(), "team", values) == []
    assert validate_tier(stdio_server(), "user", values) == []


def test_setting_a_field_outside_the_tier_schema_is_an_error_at_that_tier() -> None:
    server = stdio_server(
        team_env_schema=[{"name": "ROOT_DIR", "required": True}],
        user_env_schema=[{"name": "API_TOKEN", "secret": True}],
    )
    assert validate_tier(server, "team", {"env": {"ROOT_DIR": "/srv"}}) == []
    errors = validate_tier(server, "team", {"env": {"API_TOKEN": "x"}})
    assert errors == ["team env: 'API_TOKEN' may not be set at this tier (allowed: ROOT_DIR)"]
    assert validate_tier(server, "user", {"env": {"API_TOKEN": "x"}}) == []
    assert len(validate_tier(server, "user", {"env": {"ROOT_DIR": "/x"}})) == 1


def test_an_empty_schema_allows_nothing_at_that_tier() -> None:
    server = http_server(user_headers_schema=[])
    errors = validate_tier(server, "user", {"headers": {"X-Any": "1"}})
    assert errors == ["user headers: 'X-Any' may not be set at this tier (allowed: none)"]


def test_header_schema_names_match_case_insensitively() -> None:
    server = http_server(team_headers_schema=[{"name": "Authorization", "secret": True}])
    assert validate_tier(server, "team", {"headers": {"authorization": "Bearer x"}}) == []
    errors = validate_tier(server, "team", {"headers": {"A": "1", "a": "2"}})
    assert any("given twice" in error for error in errors)


def test_args_schema_limits_how_many_args_a_tier_gives() -> None:
    server = stdio_server(team_args_schema=[{"name": "root"}, {"name": "extra"}])
    assert validate_tier(server, "team", {"args": ["/srv", "-v"]}) == []
    assert validate_tier(server, "team", {"args": ["/srv", "-v", "-x"]}) == [
        "team args: at most 2 allowed at this tier, got 3"
    ]


def test_malformed_tier_values_are_errors_not_crashes() -> None:
    errors = validate_tier(stdio_server(), "user", {"args": "oops", "env": {"A": 1},
                                                    "headers": ["x"]})
    assert errors == [
        "user args: must be a list of strings",
        "user env: value of 'A' must be a string",
        "user headers: must be an object of names to string values",
    ]
    with pytest.raises(ValueError, match="tier"):
        validate_tier(stdio_server(), "admin", {})  # type: ignore[arg-type]


def test_validate_schema_reports_bad_catalog_entries() -> None:
    assert validate_schema(None) == []
    assert validate_schema([{"name": "A", "required": True, "secret": False}]) == []
    assert validate_schema("x", "team_env_schema") == ["team_env_schema: must be a list of fields"]
    assert validate_schema([{"name": ""}, {"name": "A", "secret": "yes"}, {"name": "A"}, 3]) == [
        "schema[0]: name must be a non-empty string",
        "schema[1]: secret must be true or false",
        "schema[2]: duplicate name 'A'",
        "schema[3]: must be an object with a name",
    ]


# --- required fields -----------------------------------------------------------------------


def test_missing_required_fields_are_listed() -> None:
    server = stdio_server(
        team_env_schema=[{"name": "ROOT_DIR", "required": True}],
        user_env_schema=[{"name": "API_TOKEN", "required": True, "secret": True}],
        user_args_schema=[{"name": "workspace", "required": True}],
    )
    assert missing_required(server, {}, {}) == [
        "team env ROOT_DIR is required",
        "user env API_TOKEN is required",
        "user args workspace (position 1) is required",
    ]
    assert missing_required(
        server, {"env": {"ROOT_DIR": "/srv"}}, {"env": {"API_TOKEN": ""}, "args": ["/w"]}
    ) == ["user env API_TOKEN is required"]
    complete = {"env": {"API_TOKEN": BOX.encrypt("t")}, "args": ["/w"]}
    assert missing_required(server, {"env": {"ROOT_DIR": "/srv"}}, complete) == []


def test_a_template_default_satisfies_a_required_field() -> None:
    server = http_server(team_headers_schema=[{"name": "x-client", "required": True}])
    assert missing_required(server, {}, {}) == []


# --- secrets -------------------------------------------------------------------------------


def secret_server() -> dict[str, Any]:
    return http_server(
        team_headers_schema=[{"name": "Authorization", "secret": True}],
        user_url_query_params_schema=[{"name": "api_key", "secret": True}, {"name": "lang"}],
    )


def test_encrypted_values_are_decrypted_only_into_the_entry() -> None:
    team = {"headers": {"Authorization": BOX.encrypt("Bearer s3cret")}}
    user = {"url_query_params": {"api_key": BOX.encrypt("k/1"), "lang": "en"}}
    entry = merge_entry(secret_server(), team, user, decrypt=BOX.decrypt)
    assert entry.headers["Authorization"] == "Bearer s3cret"
    assert entry.url == "https://mcp.example.com/search?v=2&api_key=k%2F1&lang=en&region=eu"
    assert entry.secret_metadata == {"headers": ["Authorization"], "query_params": ["api_key"]}


def test_secret_metadata_names_secret_env_of_stdio_entries_only() -> None:
    server = stdio_server(user_env_schema=[{"name": "API_TOKEN", "secret": True}])
    wire = merge_entry(server, {}, {"env": {"API_TOKEN": BOX.encrypt("t")}},
                       decrypt=BOX.decrypt).to_wire()
    assert wire["env"]["API_TOKEN"] == "t"
    assert wire["secret_metadata"] == {"env": ["API_TOKEN"]}


def test_an_encrypted_value_outside_any_secret_schema_is_still_treated_as_secret() -> None:
    entry = merge_entry(stdio_server(), {"env": {"OLD": BOX.encrypt("v")}}, {},
                        decrypt=BOX.decrypt)
    assert entry.env["OLD"] == "v"
    assert entry.secret_metadata == {"env": ["OLD"]}


def test_masking_hides_secret_values_without_decrypting() -> None:
    server = secret_server()
    server["user_args_schema"] = [{"name": "token", "secret": True}]
    team = {"headers": {"Authorization": BOX.encrypt("Bearer s3cret")}}
    user = {"url_query_params": {"api_key": "plain-but-secret", "lang": "en"}}

    def never(_: str) -> str:
        raise AssertionError("masking must not decrypt")

    entry = merge_entry(server, team, user, decrypt=never, mask=True)
    assert entry.headers == {"X-Client": "groundstation", "Authorization": MASK}
    assert entry.url == "https://mcp.example.com/search?v=2&api_key=********&lang=en&region=eu"

    stdio = stdio_server(user_args_schema=[{"name": "token", "secret": True}, {"name": "dir"}])
    masked = merge_entry(stdio, {}, {"args": ["hunter2", "/w"]}, mask=True)
    assert masked.args[-2:] == [MASK, "/w"]


def test_decryption_failures_propagate_for_last_good_rendering() -> None:
    foreign = SecretBox([os.urandom(32)]).encrypt("x")
    with pytest.raises(SecretDecryptionError):
        merge_entry(stdio_server(), {"env": {"K": foreign}}, {}, decrypt=BOX.decrypt)
    with pytest.raises(SecretDecryptionError, match="decrypt function"):
        merge_entry(stdio_server(), {"env": {"K": foreign}}, {})


# --- properties ----------------------------------------------------------------------------

NAMES = st.sampled_from(["A", "a", "B", "Token", "token", "X-Key", "q p", "ü"])
VALUES = st.text(max_size=8)
MAPPINGS = st.dictionaries(NAMES, VALUES, max_size=5)
ARGS = st.lists(st.text(max_size=5), max_size=4)
SCHEMA = st.none() | st.lists(
    st.fixed_dictionaries(
        {"name": NAMES}, optional={"required": st.booleans(), "secret": st.booleans()}
    ),
    max_size=4,
)
TIER = st.fixed_dictionaries(
    {}, optional={"args": ARGS, "env": MAPPINGS, "headers": MAPPINGS,
                  "url_query_params": MAPPINGS},
)


@st.composite
def servers(draw: st.DrawFn) -> dict[str, Any]:
    server: dict[str, Any] = {
        "transport_type": draw(st.sampled_from(["stdio", "http", "sse"])),
        "command": "run", "url": "https://h.test/p",
        "args": draw(ARGS), "env": draw(MAPPINGS), "headers": draw(MAPPINGS),
        "url_query_params": draw(MAPPINGS), "timeout_ms": draw(st.none() | st.integers(1, 10**6)),
    }
    for tier in ("team", "user"):
        for kind in ("args", "env", "headers", "url_query_params"):
            server[f"{tier}_{kind}_schema"] = draw(SCHEMA)
    return server


def expected(kind: str, layers: list[dict[str, str]], key: str) -> str | None:
    fold = str.lower if kind == "headers" else (lambda name: name)
    for layer in reversed(layers):
        for name, value in reversed(list(layer.items())):
            if fold(name) == fold(key):
                return value
    return None


@settings(max_examples=200, deadline=None)
@given(server=servers(), team=TIER, user=TIER)
def test_random_tiers_never_crash_and_respect_precedence(
    server: dict[str, Any], team: dict[str, Any], user: dict[str, Any]
) -> None:
    for tier, values in (("team", team), ("user", user)):
        assert all(isinstance(error, str) for error in validate_tier(server, tier, values))
    assert all(isinstance(item, str) for item in missing_required(server, team, user))

    entry = merge_entry(server, team, user)
    masked = merge_entry(server, team, user, mask=True)
    assert masked.transport_type == entry.transport_type
    if entry.transport_type == "stdio":
        assert entry.args == server["args"] + team.get("args", []) + user.get("args", [])
        merged, kinds = entry.env, ["env"]
        layers = [server["env"], team.get("env", {}), user.get("env", {})]
        assert merged == {name: expected("env", layers, name) for name in merged}
        assert set(merged) == {name for layer in layers for name in layer}
    else:
        kinds = ["headers", "query_params"]
        layers = [server["headers"], team.get("headers", {}), user.get("headers", {})]
        for name, value in entry.headers.items():
            assert value == expected("headers", layers, name)
        assert {name.lower() for name in entry.headers} == {
            name.lower() for layer in layers for name in layer
        }
        params = dict(parse_qsl(urlsplit(entry.url or "").query, keep_blank_values=True))
        query_layers = [server["url_query_params"], team.get("url_query_params", {}),
                        user.get("url_query_params", {})]
        assert params == {
            name: expected("url_query_params", query_layers, name)
            for layer in query_layers for name in layer
        }
    assert set(entry.secret_metadata) <= set(kinds)
    assert all(names and names == sorted(names) for names in entry.secret_metadata.values())
