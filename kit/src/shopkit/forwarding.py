"""The client's address behind proxies: X-Forwarded-For is believed only as far as trusted
proxies (the gateway, a load balancer) wrote it.

Walk the chain from the right (the entry the trusted peer appended) and stop at the first
address that is not itself a trusted proxy: that is the client; anything further left was
written by the client and proves nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.datastructures import Headers

Networks = list[ipaddress.IPv4Network | ipaddress.IPv6Network]


def parse_networks(cidrs: Iterable[str]) -> Networks:
    """CIDRs or single addresses (`10.0.0.0/8`, `127.0.0.1`)."""
    return [ipaddress.ip_network(cidr, strict=False) for cidr in cidrs]


def is_trusted(address: str, trusted: Networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    # A dual-stack listener sees an IPv4 proxy as `::ffff:10.0.0.5`: still that proxy.
    mapped = ip.ipv4_mapped if ip.version == 6 else None
    return any(ip in network or (mapped is not None and mapped in network) for network in trusted)


def forwarded_chain(peer: str, forwarded_for: str | None, trusted: Networks) -> list[str]:
    """The believable part of the chain, ending with the peer: kept only from a trusted peer,
    and only from the right up to (and including) the first untrusted address."""
    if not forwarded_for or not is_trusted(peer, trusted):
        return [peer]
    chain: list[str] = []
    for part in reversed([part.strip() for part in forwarded_for.split(",") if part.strip()]):
        # An IPv6 zone (`fe80::1%eth0`) names a link of the proxy's host, not the client, and
        # may be any length: it is dropped, and each hop kept in its one canonical spelling.
        try:
            hop = str(ipaddress.ip_address(part.partition("%")[0]))
        except ValueError:
            break  # garbage in the chain: keep what could be trusted so far
        chain.insert(0, hop)
        if not is_trusted(hop, trusted):
            break
    return [*chain, peer]


def chain_client(chain: list[str], trusted: Networks) -> str:
    """The client's address: the rightmost untrusted entry of a believable chain."""
    for hop in reversed(chain):
        if not is_trusted(hop, trusted):
            return hop
    return chain[0]


def client_ip(peer: str | None, forwarded_for: str | None, trusted: Networks) -> str:
    """The client's address as far as trusted proxies vouch for it."""
    return chain_client(forwarded_chain(peer or "unknown", forwarded_for, trusted), trusted)


def forwarded_for(headers: Headers) -> str | None:
    """Every X-Forwarded-For line, in order, as the one list they are (RFC 9110 section 5.3).

    A load balancer may append a line of its own rather than extend the client's: the first
    line alone is then whatever the client wrote, and the client could pick its address.
    """
    lines = headers.getlist("x-forwarded-for")
    return ", ".join(lines) if lines else None


def client_block(address: str) -> str:
    """What a client is counted as by rate limits and lockouts: its IPv4 address, or its IPv6
    /64. A provider gives one host a whole /64, so walking through its addresses must not buy
    a fresh budget; an IPv4-mapped address is the IPv4 client it maps."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # not an address (an unknown peer): counted as it is
    if ip.version == 4:
        return str(ip)
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((int(ip), 64), strict=False))
