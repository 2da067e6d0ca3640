"""Subkeys derived from SECRET_KEY with HKDF, one per purpose."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def derive_key(secret: str, purpose: str, length: int = 32) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=length, salt=None, info=purpose.encode()
    ).derive(secret.encode())


@dataclass(frozen=True, slots=True)
class DerivedKeys:
    registration_tokens: bytes
    sessions: bytes
    key_cache_digest: bytes
    encryption_default: bytes
    rendering_digest: bytes

    @classmethod
    def from_secret(cls, secret: str) -> DerivedKeys:
        return cls(
            registration_tokens=derive_key(secret, "groundstation/registration-tokens"),
            sessions=derive_key(secret, "groundstation/sessions"),
            key_cache_digest=derive_key(secret, "groundstation/key-cache-digest"),
            encryption_default=derive_key(secret, "groundstation/encryption"),
            rendering_digest=derive_key(secret, "groundstation/rendering-digest"),
        )
