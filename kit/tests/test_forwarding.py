"""The client's address behind trusted proxies."""

from __future__ import annotations

from shopkit.forwarding import (
    client_block,
    client_ip,
    forwarded_chain,
    forwarded_for,
    parse_networks,
)
from starlette.datastructures import Headers

TRUSTED = parse_networks(["127.0.0.1/32", "10.0.0.0/8"])


def test_the_client_is_the_rightmost_address_no_trusted_proxy_vouches_past() -> None:
    assert client_ip("127.0.0.1", "203.0.113.9, 10.1.2.3", TRUSTED) == "203.0.113.9"
    assert client_ip("127.0.0.1", "6.6.6.6, 203.0.113.9", TRUSTED) == "203.0.113.9"
    assert client_ip("198.51.100.7", "203.0.113.9", TRUSTED) == "198.51.100.7"  # untrusted peer
    assert client_ip("127.0.0.1", "junk, 203.0.113.9", TRUSTED) == "203.0.113.9"


def test_addresses_are_kept_in_one_short_spelling_without_an_ipv6_zone() -> None:
    """A zone id may be any length: `fe80::1%` plus 100 characters overflowed the 64-character
    column orders keeps the customer's address in (a 500 on checkout)."""
    zoned = "fe80::1%" + "a" * 100
    assert client_ip("127.0.0.1", zoned, TRUSTED) == "fe80::1"
    assert client_ip("127.0.0.1", "2001:DB8:0:0:0:0:0:1", TRUSTED) == "2001:db8::1"
    assert forwarded_chain("127.0.0.1", f"{zoned}, 10.0.0.1", TRUSTED) == [
        "fe80::1",
        "10.0.0.1",
        "127.0.0.1",
    ]
    longest = "0000:0000:0000:0000:0000:ffff:255.255.255.255"
    assert len(client_ip("127.0.0.1", longest, TRUSTED)) <= 64


def test_every_forwarded_for_line_is_one_list() -> None:
    """A load balancer that appends its own line left the client's line first, and reading only
    the first line believed whatever the client wrote."""
    headers = Headers(raw=[(b"x-forwarded-for", b"6.6.6.6"), (b"x-forwarded-for", b"203.0.113.9")])
    assert forwarded_for(headers) == "6.6.6.6, 203.0.113.9"
    assert client_ip("127.0.0.1", forwarded_for(headers), TRUSTED) == "203.0.113.9"
    assert forwarded_for(Headers(raw=[])) is None


def test_a_client_is_counted_by_its_ipv4_address_or_its_ipv6_64() -> None:
    assert client_block("203.0.113.9") == "203.0.113.9"
    assert client_block("2001:db8:1:2::1") == client_block("2001:db8:1:2:ffff::9")
    assert client_block("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert client_block("2001:db8:1:3::1") != client_block("2001:db8:1:2::1")
    # An IPv4-mapped address is its IPv4 client: as a /64 every such client was `::/64`, one
    # shared lockout that a single attacker could trip for all of them.
    assert client_block("::ffff:203.0.113.9") == "203.0.113.9"
    assert client_block("::ffff:198.51.100.7") != client_block("::ffff:203.0.113.9")
    assert client_block("unknown") == "unknown"


def test_an_ipv4_proxy_seen_through_a_dual_stack_socket_is_still_trusted() -> None:
    assert client_ip("::ffff:10.0.0.5", "203.0.113.9", TRUSTED) == "203.0.113.9"
    assert client_ip("::ffff:198.51.100.7", "203.0.113.9", TRUSTED) == "::ffff:198.51.100.7"
