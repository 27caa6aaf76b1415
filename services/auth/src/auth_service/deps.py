"""Request dependencies of the auth service: its runtime and the caller's network identity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from shopkit.forwarding import client_ip, forwarded_for, parse_networks

from auth_service.runtime import Runtime


@dataclass(frozen=True)
class ClientInfo:
    ip: str
    user_agent: str


async def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.auth
    return runtime


RuntimeDep = Annotated[Runtime, Depends(runtime_of)]


async def client_info(request: Request, runtime: RuntimeDep) -> ClientInfo:
    settings = runtime.settings
    peer = request.client.host if request.client else None
    trusted = parse_networks(settings.trusted_proxies)
    ip = client_ip(peer, forwarded_for(request.headers), trusted)
    return ClientInfo(ip=ip, user_agent=request.headers.get("user-agent", "")[:512])


ClientDep = Annotated[ClientInfo, Depends(client_info)]
