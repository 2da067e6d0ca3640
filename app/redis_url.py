"""REDIS_URL handling shared by the Redis bus and the Redis limit store.

The URL may carry `channel_prefix` (`redis://host:6379/0?channel_prefix=staging:`):
the start of every channel and key this deployment uses, so deployments sharing one
Redis never meet. It is not a redis-py parameter, so it is taken off the URL here.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

DEFAULT_PREFIX = "groundstation:"


def split_prefix(url: str) -> tuple[str, str | None]:
    """`(url without channel_prefix, channel_prefix or None)`."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefixes = [value for key, value in query if key == "channel_prefix"]
    if not prefixes:
        return url, None
    rest = urlencode([(key, value) for key, value in query if key != "channel_prefix"])
    return urlunsplit(parts._replace(query=rest)), prefixes[-1] or None


def safe_url(url: str) -> str:
    """The URL without its password, for logs."""
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user, has_password, _ = credentials.partition(":")
    if not has_password:  # a user name alone: nothing secret to hide
        return url
    return f"{scheme}{sep}{user}:***@{host}" if user else f"{scheme}{sep}***@{host}"
