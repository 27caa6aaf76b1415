"""Test helpers: real servers on ephemeral ports, so tests cross a real network hop."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

import uvicorn
from starlette.types import ASGIApp


def free_port() -> int:
    """A port nothing listens on right now (for "service down" cases)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def serve(
    app: ASGIApp, *, lifespan: Literal["on", "off"] = "on", proxy_headers: bool = True
) -> AsyncIterator[str]:
    """Run `app` under uvicorn in this event loop on an ephemeral port; yields its base URL.

    `proxy_headers=False` is how the gateway must run (`uvicorn --no-proxy-headers`): otherwise
    uvicorn itself believes X-Forwarded-For from 127.0.0.1 and rewrites the client address
    before the gateway's own trusted-proxy rule can judge it.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        lifespan=lifespan,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
        proxy_headers=proxy_headers,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the server stopped during start-up")
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=30)
        sock.close()
