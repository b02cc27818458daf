"""Who is on the other end of a request, for the limits kept per client (new web chat
sessions, identity checks) rather than per conversation, which a client opens at will.

The client is the peer's address, or, when the peer is one of the reverse proxies named in
`trusted_proxies`, the address those proxies forwarded (`X-Forwarded-For`, read from the right:
the first hop no trusted proxy vouches for). Without that setting behind a proxy, every client
would be the proxy, and a limit reached by one would hold back all. An IPv6 client is its /64,
the block one subscriber is given, so that moving inside it does not make a new client.
"""

from __future__ import annotations

import ipaddress

from aiohttp import web

from bot.web.keys import CORE
from certcore.config import IPNetwork

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPV6_CLIENT_PREFIX = 64


def client_address(request: web.Request) -> str:
    """`web:<address>` (`web:2001:db8:1:2::/64` for IPv6), or "" when the peer is unknown."""
    peer = _address(request.remote)
    if peer is None:
        return ""
    proxies = request.app[CORE].settings.proxy_networks
    if _within(peer, proxies):
        hops = [
            hop.strip()
            for header in request.headers.getall("X-Forwarded-For", [])
            for hop in header.split(",")
        ]
        for hop in reversed(hops):
            address = _address(hop)
            if address is None:
                break
            peer = address
            if not _within(address, proxies):
                break
    if isinstance(peer, ipaddress.IPv6Address):
        return f"web:{ipaddress.ip_network((peer, IPV6_CLIENT_PREFIX), strict=False)}"
    return f"web:{peer}"


def is_https(request: web.Request) -> bool:
    """Whether the browser reached us over https: TLS on this connection, `X-Forwarded-Proto`
    from a trusted proxy that terminated it, or a public URL that is https (the service is
    published only through TLS). A cookie that must not travel in clear is `Secure` then."""
    if request.secure or request.app[CORE].settings.public_url.startswith("https://"):
        return True
    peer = _address(request.remote)
    if peer is None or not _within(peer, request.app[CORE].settings.proxy_networks):
        return False
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[-1].strip().lower()
    return forwarded == "https"


def _address(text: str | None) -> IPAddress | None:
    if not text or len(text) > 64:
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _within(address: IPAddress, networks: tuple[IPNetwork, ...]) -> bool:
    return any(address in network for network in networks)
