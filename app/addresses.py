"""The client's address: the peer, or X-Forwarded-For when the peer is a trusted proxy."""

from __future__ import annotations

import ipaddress

from aiohttp import web

from app.config import Settings


def client_address(request: web.Request, settings: Settings) -> str:
    peer = request.remote or ""
    if not settings.trusted_proxies or not peer:
        return peer
    try:
        peer_ip = ipaddress.ip_address(peer)
    except ValueError:
        return peer
    if not any(peer_ip in network for network in settings.trusted_proxies):
        return peer
    forwarded = request.headers.get("X-Forwarded-For", "")
    # Walk right to left, skipping our own proxies: the first untrusted hop is the client.
    for hop in reversed([part.strip() for part in forwarded.split(",") if part.strip()]):
        try:
            hop_ip = ipaddress.ip_address(hop)
        except ValueError:
            return peer
        if not any(hop_ip in network for network in settings.trusted_proxies):
            return str(hop_ip)
    return peer


def is_https(request: web.Request, settings: Settings) -> bool:
    """Whether the client reached us over https: directly, or through a trusted proxy
    that says so (`X-Forwarded-Proto`). Decides the session cookie's `Secure` flag."""
    if request.secure:
        return True
    peer = request.remote or ""
    try:
        peer_ip = ipaddress.ip_address(peer)
    except ValueError:
        return False
    trusted = any(peer_ip in network for network in settings.trusted_proxies)
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return trusted and forwarded == "https"
