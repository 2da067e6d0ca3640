"""Secret values at rest: AES-256-GCM with a key ring (docs/architecture.md §3).

A stored secret is a self-describing token::

    enc:v1:<key id>:<urlsafe base64 of 12-byte nonce + ciphertext + tag>

The key id is the first 8 hex characters of the SHA-256 of the key, so a token
names the key that sealed it without revealing anything about the key. The
prefix and key id (`enc:v1:<key id>`) are bound as associated data: changing
them, or any byte of the ciphertext, makes decryption fail.

The ring lists keys newest first (`ENCRYPTION_KEYS`); `encrypt` always uses the
newest, `decrypt` uses whichever key the token names, so adding a new key in
front keeps every old secret readable, and `rotate` re-seals a token with the
newest key. With no `ENCRYPTION_KEYS`, the ring is the one key derived from
`SECRET_KEY` (`rt.keys.encryption_default`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.config import Settings, SettingsError, env_name

TOKEN_PREFIX = "enc:v1:"
KEY_LENGTH = 32
NONCE_LENGTH = 12
KEY_ID_LENGTH = 8
_TAG_LENGTH = 16
_TOKEN_PATTERN = re.compile(
    rf"^enc:v1:(?P<key_id>[0-9a-f]{{{KEY_ID_LENGTH}}}):(?P<payload>[A-Za-z0-9_-]+={{0,2}})$"
)


class SecretDecryptionError(ValueError):
    """A token cannot be opened: malformed, sealed by a key not in the ring, or tampered with.

    The message never contains the token's plaintext or any key material.
    """


def key_id(key: bytes) -> str:
    """The short public name of a key: the first 8 hex characters of its SHA-256."""
    return hashlib.sha256(key).hexdigest()[:KEY_ID_LENGTH]


def is_encrypted(value: object) -> bool:
    """True when `value` is a string shaped like a token of this module (`enc:v1:…`)."""
    return isinstance(value, str) and _TOKEN_PATTERN.match(value) is not None


def _associated_data(kid: str) -> bytes:
    return f"{TOKEN_PREFIX}{kid}".encode()


class SecretBox:
    """Seals and opens secret strings with a key ring (newest key first)."""

    __slots__ = ("_ciphers", "_newest_id")

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("a SecretBox needs at least one key")
        self._ciphers: dict[str, list[AESGCM]] = {}
        seen: set[bytes] = set()
        for position, key in enumerate(keys, start=1):
            if len(key) != KEY_LENGTH:
                raise ValueError(f"encryption key {position} must be {KEY_LENGTH} bytes")
            if key in seen:
                continue
            seen.add(key)
            # Distinct keys sharing an 8-hex id are possible in principle: keep all, try each.
            self._ciphers.setdefault(key_id(key), []).append(AESGCM(key))
        self._newest_id = key_id(keys[0])

    @property
    def newest_key_id(self) -> str:
        """The id of the key `encrypt` uses."""
        return self._newest_id

    @property
    def key_ids(self) -> list[str]:
        """The ids of every key in the ring, newest first."""
        return list(self._ciphers)

    def encrypt(self, plain: str) -> str:
        """Seal `plain` with the newest key; every call uses a fresh random nonce."""
        nonce = os.urandom(NONCE_LENGTH)
        cipher = self._ciphers[self._newest_id][0]
        sealed = cipher.encrypt(nonce, plain.encode("utf-8"), _associated_data(self._newest_id))
        payload = base64.urlsafe_b64encode(nonce + sealed).decode("ascii")
        return f"{TOKEN_PREFIX}{self._newest_id}:{payload}"

    def decrypt(self, token: str) -> str:
        """Open a token with the key it names.

        Raises `SecretDecryptionError` when the token is malformed, names a key
        that is not in the ring, or fails authentication (tampered, wrong key).
        """
        kid, blob = _parse_token(token)
        ciphers = self._ciphers.get(kid)
        if not ciphers:
            raise SecretDecryptionError(
                f"secret was encrypted with key {kid}, which is not in the key ring "
                "(add it to ENCRYPTION_KEYS)"
            )
        nonce, sealed = blob[:NONCE_LENGTH], blob[NONCE_LENGTH:]
        for cipher in ciphers:
            try:
                plain = cipher.decrypt(nonce, sealed, _associated_data(kid))
            except InvalidTag:
                continue
            try:
                return plain.decode("utf-8")
            except UnicodeDecodeError as exc:  # authentic but not ours: treat as corrupt
                raise SecretDecryptionError("secret does not decode as UTF-8") from exc
        raise SecretDecryptionError(
            f"secret sealed with key {kid} failed authentication (tampered or corrupt)"
        )

    def needs_rotation(self, token: str) -> bool:
        """True when a token is sealed by a key other than the newest."""
        kid, _ = _parse_token(token)
        return kid != self._newest_id

    def rotate(self, token: str) -> str:
        """Re-seal a token with the newest key; a token already under it is returned as is.

        Raises `SecretDecryptionError` like `decrypt` (a plain value is not a token).
        """
        if not self.needs_rotation(token):
            self.decrypt(token)  # still prove it opens: rotation must never keep a bad token
            return token
        return self.encrypt(self.decrypt(token))


def _parse_token(token: str) -> tuple[str, bytes]:
    match = _TOKEN_PATTERN.match(token) if isinstance(token, str) else None
    if match is None:
        raise SecretDecryptionError("value is not an encrypted secret (expected enc:v1:…)")
    try:
        blob = base64.urlsafe_b64decode(match["payload"])
    except (binascii.Error, ValueError) as exc:
        raise SecretDecryptionError("encrypted secret has a malformed payload") from exc
    if len(blob) < NONCE_LENGTH + _TAG_LENGTH:
        raise SecretDecryptionError("encrypted secret is truncated")
    return match["key_id"], blob


def parse_encryption_keys(raw_keys: Sequence[str]) -> list[bytes]:
    """Decode `ENCRYPTION_KEYS` entries (urlsafe base64 of 32 bytes, padding optional).

    Raises `SettingsError` naming the variable and the entry's position (never its value).
    """
    name = env_name("encryption_keys")
    keys: list[bytes] = []
    for position, raw in enumerate(raw_keys, start=1):
        text = raw.strip()
        try:
            key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError) as exc:
            raise SettingsError(
                f"{name}: entry {position} is not urlsafe base64 "
                f"(each key is 32 random bytes, urlsafe-base64 encoded)"
            ) from exc
        # b64decode ignores stray characters by default: re-encode to reject them.
        canonical = base64.urlsafe_b64encode(key).decode("ascii").rstrip("=")
        if canonical != text.rstrip("="):
            raise SettingsError(f"{name}: entry {position} is not urlsafe base64")
        if len(key) != KEY_LENGTH:
            raise SettingsError(
                f"{name}: entry {position} decodes to {len(key)} bytes, expected {KEY_LENGTH}"
            )
        keys.append(key)
    return keys


def build_secret_box(settings: Settings, derived_default_key: bytes) -> SecretBox:
    """The ring from `ENCRYPTION_KEYS` (newest first), else the key derived from SECRET_KEY.

    Pass `rt.keys.encryption_default` as `derived_default_key`. Note: once
    `ENCRYPTION_KEYS` is set, secrets sealed with the derived key stay readable
    only if that key is also listed; `encode_key(rt.keys.encryption_default)`
    gives its `ENCRYPTION_KEYS` form.
    """
    keys = parse_encryption_keys(settings.encryption_keys)
    return SecretBox(keys or [derived_default_key])


def encode_key(key: bytes) -> str:
    """The `ENCRYPTION_KEYS` form of a key (urlsafe base64, unpadded)."""
    return base64.urlsafe_b64encode(key).decode("ascii").rstrip("=")


def generate_key() -> str:
    """A fresh random key in its `ENCRYPTION_KEYS` form."""
    return encode_key(os.urandom(KEY_LENGTH))


__all__ = [
    "TOKEN_PREFIX",
    "SecretBox",
    "SecretDecryptionError",
    "build_secret_box",
    "encode_key",
    "generate_key",
    "is_encrypted",
    "key_id",
    "parse_encryption_keys",
]
