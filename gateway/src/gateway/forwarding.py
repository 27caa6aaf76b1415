"""What crosses the gateway: the client's address, and which headers go up and come back.

Clients must not be able to speak for the gateway: headers that carry identity or network
facts (`X-User-Id`, `X-Forwarded-For`, ...) are dropped from every request and replaced by the
gateway's own values. Hop-by-hop headers (RFC 9110 section 7.6.1) never cross a proxy.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable

from shopkit.edge import SURROGATE_CONTROL, SURROGATE_KEY
from shopkit.forwarding import (
    Networks,
    chain_client,
    client_block,
    forwarded_chain,
    forwarded_for,
    parse_networks,
)

__all__ = [
    "Networks",
    "chain_client",
    "client_block",
    "forwarded_chain",
    "forwarded_for",
    "parse_networks",
]

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)

SPOOFABLE = frozenset(
    {
        # network facts only the gateway may state
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-forwarded-port",
        "x-forwarded-prefix",
        "x-real-ip",
        "x-client-ip",
        "true-client-ip",
        "cf-connecting-ip",
        "x-cluster-client-ip",
        "x-original-forwarded-for",
        # identity asserted by a trusted hop in some architectures: never by a client
        "x-user-id",
        "x-user",
        "x-user-email",
        "x-user-roles",
        "x-roles",
        "x-forwarded-user",
        "x-forwarded-email",
        "x-forwarded-groups",
        "x-remote-user",
        "remote-user",
        "x-authenticated-user",
        "x-authenticated-userid",
        "x-auth-user",
        "x-auth-request-user",
        "x-auth-request-email",
        "x-auth-request-groups",
        "x-principal",
        "x-internal-auth",
        "x-original-url",
        "x-rewrite-url",
        "x-http-method-override",
        "x-method-override",
    }
)
SPOOFABLE_PREFIXES = ("x-internal-", "x-auth-request-", "x-shop-")

NOT_FORWARDED = frozenset({"host", "content-length", "x-request-id"}) | HOP_BY_HOP | SPOOFABLE
"""`host` is the upstream's; content length and request id are set by the gateway itself."""


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


def request_id(incoming: str | None) -> str:
    """Keep a well-formed client request id (for correlation), otherwise mint one."""
    if incoming and _REQUEST_ID.match(incoming):
        return incoming
    return secrets.token_hex(16)


def _connection_listed(headers: Iterable[tuple[str, str]]) -> set[str]:
    listed: set[str] = set()
    for name, value in headers:
        if name == "connection":
            listed.update(token.strip().lower() for token in value.split(","))
    return listed


def upstream_headers(
    raw: list[tuple[bytes, bytes]],
    *,
    chain: list[str],
    proto: str,
    host: str | None,
    request_id: str,
    content_length: int | None,
    trace: dict[str, str] | None = None,
) -> list[tuple[bytes, bytes]]:
    """Client headers safe to pass on, plus the gateway's forwarding facts.

    `trace` is the gateway's own span context (`traceparent`, `tracestate`): when present it
    replaces the client's, so the service's span is the gateway span's child in the same trace.
    The headers are returned as the bytes they arrived as: HTTP allows any byte from 0x80 in a
    value (a UTF-8 cookie or user agent), and httpx refuses such a value given as text.
    """
    decoded = [(name.decode("latin-1").lower(), value.decode("latin-1")) for name, value in raw]
    dropped = NOT_FORWARDED | _connection_listed(decoded) | set(trace or ())
    headers = [
        (name, value)
        for name, value in decoded
        if name not in dropped
        and not name.startswith(SPOOFABLE_PREFIXES)
        and not (name == "traceparent" and not _TRACEPARENT.match(value))
    ]
    headers.append(("x-forwarded-for", ", ".join(chain)))
    headers.append(("x-forwarded-proto", proto))
    if host:
        headers.append(("x-forwarded-host", host))
    headers.append(("x-request-id", request_id))
    headers.extend((trace or {}).items())
    if content_length is not None:
        headers.append(("content-length", str(content_length)))
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]


_SET_BY_GATEWAY = frozenset({b"x-request-id", b"server", b"date"})
"""The gateway's own server states these; the upstream's copy would be a duplicate."""


_FOR_THE_EDGE = frozenset({SURROGATE_CONTROL.encode(), SURROGATE_KEY.encode()})


def response_headers(raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Upstream response headers minus hop-by-hop ones (body framing is redone by the server),
    those the gateway's own server states, and the directives addressed to its edge cache."""
    items = [(name.lower(), value) for name, value in raw]
    listed = {
        token.strip().lower().encode()
        for name, value in items
        if name == b"connection"
        for token in value.decode("latin-1").split(",")
    }
    return [
        (name, value)
        for name, value in items
        if name.decode("latin-1") not in HOP_BY_HOP
        and name not in listed
        and name not in _SET_BY_GATEWAY
        and name not in _FOR_THE_EDGE
    ]
