"""Request dependencies of the auth service: its runtime and the caller's network identity."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from shopkit.security import TokenVerifier, verifier_of

from auth_service.runtime import Runtime


@dataclass(frozen=True)
class ClientInfo:
    ip: str
    user_agent: str


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.auth
    return runtime


def client_ip(peer: str | None, forwarded_for: str | None, trusted: list[str]) -> str:
    """The client address: X-Forwarded-For is believed only as far as trusted proxies added it.

    Walk the chain from the right (the entry our trusted peer appended) and stop at the first
    address that is not itself a trusted proxy; anything left of it is client-controlled.
    """
    networks = [ipaddress.ip_network(cidr, strict=False) for cidr in trusted]

    def is_trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in networks)

    current = peer or "unknown"
    if not forwarded_for or not is_trusted(current):
        return current
    for hop in reversed([part.strip() for part in forwarded_for.split(",") if part.strip()]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return current  # garbage in the chain: keep the last address we could trust
        current = hop
        if not is_trusted(hop):
            return hop
    return current


def client_info(request: Request) -> ClientInfo:
    settings = runtime_of(request).settings
    peer = request.client.host if request.client else None
    ip = client_ip(peer, request.headers.get("x-forwarded-for"), settings.trusted_proxies)
    return ClientInfo(ip=ip, user_agent=request.headers.get("user-agent", "")[:512])


RuntimeDep = Annotated[Runtime, Depends(runtime_of)]
VerifierDep = Annotated[TokenVerifier, Depends(verifier_of)]
ClientDep = Annotated[ClientInfo, Depends(client_info)]
