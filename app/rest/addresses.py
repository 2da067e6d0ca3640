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
