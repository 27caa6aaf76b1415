"""aiohttp's connection pool under the gateway's httpx client, with its failures told apart.

httpx-aiohttp's own `handle_async_request` is replaced because of what it did with failures
and headers:

* it mapped every `aiohttp.ClientConnectionError` to `httpx.ConnectTimeout`, so an upstream
  that received the request and then closed the connection looked unreachable (503), and an
  idempotent request it had already been given was sent again; a wait for a free pooled
  connection looked the same, and was retried instead of failing fast;
* a malformed answer (a bad status line, a header over aiohttp's limits) raised an aiohttp
  exception httpx knows nothing about, which became a 500;
* it passed the headers as a mapping, whose items() joins repeated lines with commas.

Here the aiohttp error is translated by what it says about the request: never sent (refused,
DNS: `httpx.ConnectError`; connect timed out: `httpx.ConnectTimeout`), waited for the pool
(`httpx.PoolTimeout`), response timed out (`httpx.ReadTimeout`), or sent and then broken
(`httpx.RemoteProtocolError`). `gateway.proxy` retries only the first kind.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import aiohttp
import httpx
from aiohttp.http_exceptions import HttpProcessingError
from httpx_aiohttp import AiohttpTransport

UPSTREAM_KEEPALIVE_SECONDS = 4.0
"""How long an idle pooled connection is kept: below the upstreams' own keep-alive (uvicorn's
default is 5 s), so the gateway drops a connection before the server may close it, instead of
sending a request on it just as it closes (a failure after sending, which is not retried)."""

_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")
"""aiohttp adds these when absent; only what the client sent goes upstream."""


class _Attempt:
    """What aiohttp's tracing said about one request: whether it is waiting for the pool."""

    __slots__ = ("queued",)

    def __init__(self) -> None:
        self.queued = False


async def _queued(_: aiohttp.ClientSession, context: SimpleNamespace, __: object) -> None:
    attempt = context.trace_request_ctx
    if isinstance(attempt, _Attempt):
        attempt.queued = True


async def _dequeued(_: aiohttp.ClientSession, context: SimpleNamespace, __: object) -> None:
    attempt = context.trace_request_ctx
    if isinstance(attempt, _Attempt):
        attempt.queued = False


def _pool_tracing() -> aiohttp.TraceConfig:
    # aiohttp raises the same ConnectionTimeoutError whether the `connect` budget ran out
    # waiting for a free connection or while connecting; only its trace signals tell them apart.
    tracing = aiohttp.TraceConfig()
    tracing.on_connection_queued_start.append(_queued)
    tracing.on_connection_queued_end.append(_dequeued)
    return tracing


def new_session(*, max_connections: int) -> aiohttp.ClientSession:
    """The pooled aiohttp session (created inside the running event loop)."""
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(
            limit=max_connections, keepalive_timeout=UPSTREAM_KEEPALIVE_SECONDS
        ),
        auto_decompress=False,
        trust_env=False,
        skip_auto_headers=_AUTO_HEADERS,
        trace_configs=[_pool_tracing()],
    )
    # aiohttp sends an idempotent request a second time when the connection breaks after it
    # was written: the upstream may have acted on it already, and the gateway retries only
    # requests that never reached the upstream. There is no public switch; aiohttp's own test
    # client sets the same attribute.
    session._retry_connection = False
    return session


def translate(exc: BaseException, attempt: _Attempt | None = None) -> httpx.TransportError | None:
    """The httpx error saying what happened to the request, None for a foreign exception."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        if attempt is not None and attempt.queued:
            return httpx.PoolTimeout("no free connection to the upstream in time")
        return httpx.ConnectTimeout("connecting to the upstream timed out")
    if isinstance(exc, aiohttp.ClientConnectorError):
        # Refused, unresolvable, TLS failed: nothing was sent.
        return httpx.ConnectError(str(exc.os_error))
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return httpx.ReadTimeout("the upstream did not answer in time")
    if isinstance(exc, aiohttp.ClientError | HttpProcessingError):
        # Disconnected or reset after the request went out, a malformed answer, a cut body:
        # the upstream may have acted on the request.
        return httpx.RemoteProtocolError(f"broken upstream answer: {type(exc).__name__}")
    return None


class _Body(httpx.AsyncByteStream):
    CHUNK_SIZE = 16 * 1024

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(self.CHUNK_SIZE):
                yield chunk
        except Exception as exc:
            mapped = translate(exc)
            if mapped is None:
                raise
            raise mapped from exc

    async def aclose(self) -> None:
        self._response.release()
        await self._response.wait_for_close()


class UpstreamTransport(AiohttpTransport):
    """httpx-aiohttp's transport sending every header line as given, with failures mapped
    as the module docstring says."""

    def __init__(self, *, max_connections: int) -> None:
        super().__init__(client=lambda: new_session(max_connections=max_connections))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not isinstance(self.client, aiohttp.ClientSession):
            self.client = self.get_client()
        timeout: dict[str, Any] = request.extensions.get("timeout", {})
        data: Any
        try:
            data = request.content or None
        except httpx.RequestNotRead:
            data = request.stream
            request.headers.pop("transfer-encoding", None)  # aiohttp frames the body itself
        attempt = _Attempt()
        try:
            response = await self.client.request(
                request.method,
                str(request.url),
                # A list of lines, not a mapping: repeated headers stay separate lines.
                headers=request.headers.multi_items(),
                data=data,
                allow_redirects=False,
                compress=False,
                timeout=aiohttp.ClientTimeout(
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                    connect=timeout.get("pool"),
                ),
                trace_request_ctx=attempt,
            )
        except Exception as exc:
            mapped = translate(exc, attempt)
            if mapped is None:
                raise
            raise mapped from exc
        extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode()
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_Body(response),
            request=request,
            extensions=extensions,
        )
