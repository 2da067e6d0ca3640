"""The one reading of `Authorization: Bearer <credential>` (the scheme is case-insensitive,
RFC 9110 §11.1), for API keys, registration tokens and session tokens alike."""

from __future__ import annotations

_SCHEME = "bearer "


def bearer_credential(authorization: str | None) -> str | None:
    """The credential of a Bearer header, or None (no header, another scheme, empty)."""
    if authorization is None or authorization[:len(_SCHEME)].lower() != _SCHEME:
        return None
    return authorization[len(_SCHEME):].strip() or None


__all__ = ["bearer_credential"]
