"""URLs in logs and messages: the password hidden, everything else kept."""

from __future__ import annotations

import pytest

from app.redis_url import safe_url


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://:s3cret@cache:6379/0", "redis://***@cache:6379/0"),
    ("redis://ops:s3cret@cache:6379/0", "redis://ops:***@cache:6379/0"),
    ("postgres://gs:pa:ss@db:5432/gs", "postgres://gs:***@db:5432/gs"),
    ("postgres://gs@db:5432/gs", "postgres://gs@db:5432/gs"),  # no password to hide
    ("redis://cache:6379/0", "redis://cache:6379/0"),
])
def test_only_the_password_is_hidden(url: str, shown: str) -> None:
    assert safe_url(url) == shown
    assert "s3cret" not in safe_url(url)
