"""Secrets at rest: AES-GCM tokens with a rotatable key ring."""

from __future__ import annotations

import base64
import os

import pytest

from app.auth.keys import DerivedKeys
from app.auth.secrets import (
    SecretBox,
    SecretDecryptionError,
    build_secret_box,
    encode_key,
    generate_key,
    is_encrypted,
    key_id,
)
from app.config import Settings, SettingsError

PLAIN = "sk-live-0123456789abcdef"


def new_key() -> bytes:
    return os.urandom(32)


def test_round_trip_returns_the_original_value() -> None:
    box = SecretBox([new_key()])
    for value in (PLAIN, "", "ünïcødé ✓", "x" * 10_000):
        assert box.decrypt(box.encrypt(value)) == value


def test_each_encryption_differs_and_names_the_key() -> None:
    key = new_key()
    box = SecretBox([key])
    first, second = box.encrypt(PLAIN), box.encrypt(PLAIN)
    assert first != second
    assert first.startswith(f"enc:v1:{key_id(key)}:")
    assert is_encrypted(first)
    assert is_encrypted(second)


def test_token_never_contains_the_plaintext() -> None:
    box = SecretBox([new_key()])
    token = box.encrypt(PLAIN)
    assert PLAIN not in token
    payload = base64.urlsafe_b64decode(token.rsplit(":", 1)[1])
    assert PLAIN.encode() not in payload


def test_is_encrypted_rejects_plain_values() -> None:
    for value in (PLAIN, "enc:v1:", "enc:v1:zzzzzzzz:abc", "enc:v2:0123abcd:AAAA", 42, None):
        assert not is_encrypted(value)


def test_tampered_ciphertext_is_rejected() -> None:
    box = SecretBox([new_key()])
    token = box.encrypt(PLAIN)
    head, payload = token.rsplit(":", 1)
    raw = bytearray(base64.urlsafe_b64decode(payload))
    raw[-1] ^= 0x01
    tampered = f"{head}:{base64.urlsafe_b64encode(bytes(raw)).decode()}"
    with pytest.raises(SecretDecryptionError, match="failed authentication"):
        box.decrypt(tampered)


def test_relabelled_key_id_is_rejected() -> None:
    """The key id is bound as associated data: moving a token to another key's id fails."""
    old, new = new_key(), new_key()
    box = SecretBox([new, old])
    token = box.encrypt(PLAIN)
    relabelled = token.replace(key_id(new), key_id(old), 1)
    with pytest.raises(SecretDecryptionError):
        box.decrypt(relabelled)


def test_malformed_and_truncated_tokens_are_rejected() -> None:
    box = SecretBox([new_key()])
    token = box.encrypt(PLAIN)
    for bad in (PLAIN, token[:20], f"enc:v1:{box.newest_key_id}:AAAA"):
        with pytest.raises(SecretDecryptionError):
            box.decrypt(bad)


def test_unknown_key_is_a_clear_error() -> None:
    token = SecretBox([new_key()]).encrypt(PLAIN)
    other = SecretBox([new_key()])
    with pytest.raises(SecretDecryptionError, match="not in the key ring"):
        other.decrypt(token)


def test_rotation_keeps_old_secrets_readable_and_encrypts_with_new_key() -> None:
    old, new = new_key(), new_key()
    old_token = SecretBox([old]).encrypt(PLAIN)

    ring = SecretBox([new, old])
    assert ring.decrypt(old_token) == PLAIN
    assert ring.encrypt(PLAIN).startswith(f"enc:v1:{key_id(new)}:")
    assert ring.needs_rotation(old_token)

    rotated = ring.rotate(old_token)
    assert rotated.startswith(f"enc:v1:{key_id(new)}:")
    assert not ring.needs_rotation(rotated)
    assert ring.rotate(rotated) == rotated
    # Once rotated, the old key can leave the ring.
    assert SecretBox([new]).decrypt(rotated) == PLAIN
    with pytest.raises(SecretDecryptionError):
        SecretBox([new]).decrypt(old_token)


def test_rotate_refuses_plain_values() -> None:
    with pytest.raises(SecretDecryptionError):
        SecretBox([new_key()]).rotate(PLAIN)


def test_box_built_from_settings_uses_the_ring_newest_first() -> None:
    old, new = new_key(), new_key()
    settings = Settings(encryption_keys=(encode_key(new), encode_key(old)))
    box = build_secret_box(settings, derived_default_key=new_key())
    assert box.key_ids == [key_id(new), key_id(old)]
    assert box.decrypt(SecretBox([old]).encrypt(PLAIN)) == PLAIN


def test_padded_keys_are_accepted() -> None:
    key = new_key()
    padded = base64.urlsafe_b64encode(key).decode()
    box = build_secret_box(Settings(encryption_keys=(padded,)), derived_default_key=new_key())
    assert box.newest_key_id == key_id(key)


def test_without_encryption_keys_the_derived_key_is_used() -> None:
    derived = DerivedKeys.from_secret("s" * 48).encryption_default
    box = build_secret_box(Settings(), derived_default_key=derived)
    assert box.key_ids == [key_id(derived)]
    # The same SECRET_KEY gives the same box after a restart.
    again = build_secret_box(Settings(), DerivedKeys.from_secret("s" * 48).encryption_default)
    assert again.decrypt(box.encrypt(PLAIN)) == PLAIN


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("not base64!!", "entry 2 is not urlsafe base64"),
        (encode_key(b"short"), "entry 2 decodes to 5 bytes, expected 32"),
        (encode_key(os.urandom(48)), "entry 2 decodes to 48 bytes"),
    ],
    ids=["not-base64", "too-short", "too-long"],  # stable ids: xdist workers must agree
)
def test_malformed_encryption_keys_are_a_clear_settings_error(raw: str, message: str) -> None:
    settings = Settings(encryption_keys=(generate_key(), raw))
    with pytest.raises(SettingsError, match="ENCRYPTION_KEYS") as caught:
        build_secret_box(settings, derived_default_key=new_key())
    assert message in str(caught.value)
    assert raw not in str(caught.value)


def test_generated_keys_are_valid_ring_entries() -> None:
    key = generate_key()
    box = build_secret_box(Settings(encryption_keys=(key,)), derived_default_key=new_key())
    assert box.decrypt(box.encrypt(PLAIN)) == PLAIN
