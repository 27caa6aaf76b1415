"""How upstream failures are told apart, on both connection pools, with raw TCP upstreams that
misbehave in exactly one way: what the client gets, what is counted, what is sent again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
from gateway.app import build_app
from prometheus_client import REGISTRY
from shopkit.testing import app_client

from .conftest import gateway_settings

PROBLEM = "application/problem+json"

Reply = Callable[[float], Awaitable[bytes | None]]
"""Given how long the connection sat idle before this request: the bytes to answer, or None
to close the connection without answering."""


def gateway_for(
    upstreams: dict[str, str], **overrides: object
) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    return app_client(build_app(gateway_settings(upstreams, **overrides)))


def ok(body: bytes = b"{}") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


@dataclass
class RawUpstream:
    url: str = ""
    received: int = 0
    """Requests whose head arrived, answered or not."""


@asynccontextmanager
async def raw_upstream(reply: Reply, *, close_after: bool = False) -> AsyncIterator[RawUpstream]:
    """A raw HTTP/1.1 server that keeps connections open, unless `close_after` an answer."""
    upstream = RawUpstream()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        idle_since = time.monotonic()
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                upstream.received += 1
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length" and int(value):
                        await reader.readexactly(int(value))
                answer = await reply(time.monotonic() - idle_since)
                if answer is None:
                    return
                writer.write(answer)
                await writer.drain()
                if close_after:
                    return
                idle_since = time.monotonic()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    upstream.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield upstream
    finally:
        server.close()


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _failures(service: str, kind: str) -> float:
    return _sample("shop_gateway_upstream_failures_total", service=service, kind=kind)


def _retries(service: str, method: str) -> float:
    return _sample("shop_gateway_upstream_retries_total", service=service, method=method)


TRANSPORTS = pytest.mark.parametrize("transport", ["aiohttp", "httpcore"])


@TRANSPORTS
async def test_upstream_closing_after_the_request_is_502_and_never_sent_again(
    upstreams: dict[str, str], transport: str
) -> None:
    async def close(_: float) -> None:
        return None

    async with raw_upstream(close) as raw:
        targets = {**upstreams, "catalog": raw.url, "orders": raw.url}
        async with gateway_for(targets, upstream_transport=transport) as gateway:
            for method, path, service in [
                ("GET", "/api/products/x", "catalog"),
                ("DELETE", "/api/cart/items/x", "orders"),
                ("POST", "/api/cart/items", "orders"),
            ]:
                retries, unreachable = _retries(service, method), _failures(service, "unreachable")
                before = raw.received
                response = await gateway.request(method, path, content=b'{"a": 1}')
                assert response.status_code == 502, (method, path, response.text)
                assert response.headers["content-type"] == PROBLEM
                assert response.json()["type"].endswith("/bad-gateway")
                # It was delivered: the upstream may have acted on it, so it is not resent.
                assert raw.received - before == 1, (method, path)
                assert _retries(service, method) == retries
                assert _failures(service, "unreachable") == unreachable


@TRANSPORTS
@pytest.mark.parametrize(
    "answer",
    [
        b"NOT-HTTP garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-Huge: " + b"a" * 200_000 + b"\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nContent-Type: application/json\r\n\r\n{",
    ],
    ids=["bad-status-line", "header-too-long", "truncated-body"],
)
async def test_malformed_upstream_answers_are_502_problems(
    upstreams: dict[str, str], transport: str, answer: bytes
) -> None:
    async def malformed(_: float) -> bytes:
        return answer

    async with raw_upstream(malformed, close_after=True) as raw:
        targets = {**upstreams, "catalog": raw.url}
        async with gateway_for(targets, upstream_transport=transport) as gateway:
            before = _failures("catalog", "unreachable")
            response = await gateway.get("/api/products/x")
            assert response.status_code == 502, response.text
            assert response.headers["content-type"] == PROBLEM
            assert response.json()["type"].endswith("/bad-gateway")
            assert raw.received == 1
            assert _failures("catalog", "unreachable") == before


@TRANSPORTS
async def test_waiting_for_a_pooled_connection_is_a_fast_503_counted_as_pool_exhausted(
    upstreams: dict[str, str], transport: str
) -> None:
    async def slow(_: float) -> bytes:
        await asyncio.sleep(1.5)
        return ok()

    async with (
        raw_upstream(slow) as raw,
        gateway_for(
            {**upstreams, "catalog": raw.url},
            upstream_transport=transport,
            max_connections=1,
            max_keepalive_connections=1,
            pool_timeout_seconds=0.3,
            timeouts={"catalog": 5},
        ) as gateway,
    ):
        exhausted, unreachable = (
            _failures("catalog", "pool_exhausted"),
            _failures("catalog", "unreachable"),
        )
        retries = _retries("catalog", "GET")

        async def timed(path: str) -> tuple[httpx.Response, float]:
            started = time.monotonic()
            response = await gateway.get(path)
            return response, time.monotonic() - started

        first = asyncio.create_task(timed("/api/products/a"))
        await asyncio.sleep(0.2)  # the first holds the only connection
        waited, elapsed = await timed("/api/products/b")
        assert waited.status_code == 503, waited.text
        assert waited.json()["type"].endswith("/unavailable")
        assert elapsed < 1.0  # the pool timeout, not retries nor the upstream's answer
        assert _failures("catalog", "pool_exhausted") == exhausted + 1
        assert _failures("catalog", "unreachable") == unreachable
        assert _retries("catalog", "GET") == retries
        answered, _ = await first
        assert answered.status_code == 200
        assert raw.received == 1


@TRANSPORTS
async def test_an_idle_pooled_connection_is_dropped_before_the_upstream_drops_it(
    upstreams: dict[str, str], transport: str
) -> None:
    # Like uvicorn (keep-alive 5 s): a request arriving as the server gives up on the idle
    # connection is lost with it. The gateway must have let the connection go before.
    server_keepalive = 4.5

    async def keepalive(idle: float) -> bytes | None:
        return None if idle > server_keepalive else ok()

    async with raw_upstream(keepalive) as raw:
        targets = {**upstreams, "catalog": raw.url}
        async with gateway_for(targets, upstream_transport=transport) as gateway:
            assert (await gateway.get("/api/products/a")).status_code == 200
            await asyncio.sleep(server_keepalive + 0.2)
            response = await gateway.get("/api/products/b")
            assert response.status_code == 200, response.text
            assert raw.received == 2  # on a fresh connection, once
