"""The reverse proxy: route, authenticate, rate-limit, forward, relay the answer.

Bodies are forwarded as raw bytes (webhook signatures are verified downstream on exactly these
bytes) and streamed both ways; small responses with a known length are relayed in one piece,
which is cheaper than a stream. Only idempotent methods are ever retried, and only when the
upstream could not be reached at all. Upstream failures become problem documents that name no
host, port or exception.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
from prometheus_client import Counter
from shopkit.edge import SURROGATE_CONTROL, SURROGATE_KEY
from shopkit.problems import problem_response
from shopkit.security import InvalidTokenError, Principal, TokenVerifier
from shopkit.tracing import current_trace_headers
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from gateway import forwarding
from gateway.config import GatewaySettings
from gateway.edge_cache import EdgeCache
from gateway.ratelimit import Admission, Identity, RateLimiter, RedisUnavailableError
from gateway.routes import IDEMPOTENT_METHODS, WRITE_METHODS, Route, RouteTable

log = logging.getLogger(__name__)

UPSTREAM_RETRIES = Counter(
    "shop_gateway_upstream_retries_total",
    "Requests sent again because the upstream could not be reached (idempotent methods only)",
    ["service", "method"],
)
UPSTREAM_FAILURES = Counter(
    "shop_gateway_upstream_failures_total",
    "Requests answered by the gateway itself because the upstream failed",
    ["service", "kind"],
)

RELAY_WHOLE_MAX_BYTES = 256 * 1024
"""Responses up to this size (with a Content-Length) are read whole and sent in one piece."""


class BodyTooLargeError(Exception):
    pass


@dataclass
class Gateway:
    settings: GatewaySettings
    client: httpx.AsyncClient
    verifier: TokenVerifier
    """Checks signature and claims only; revocation is read in the admission round trip."""
    limiter: RateLimiter
    routes: RouteTable
    trusted: forwarding.Networks
    edge: EdgeCache | None = None

    async def handle(self, request: Request) -> Response:
        request_id = forwarding.request_id(request.headers.get("x-request-id"))
        response = await self._handle(request, request_id)
        response.headers["X-Request-ID"] = request_id
        return response

    async def _handle(self, request: Request, request_id: str) -> Response:
        path, method = request.url.path, request.method
        if _has_dot_segments(request):
            return _problem(
                400, "The path contains dot segments or encoded separators.", slug="bad-path"
            )
        if len(request.headers.getlist("authorization")) > 1:
            # Which token counts would depend on who reads it: the gateway checked the first
            # line while the service got them joined. One credential, or none.
            return _problem(
                400, "The Authorization header is repeated.", slug="repeated-authorization"
            )
        route = self.routes.match(method, path)
        if route is None:
            return _problem(404, "No service answers this path.", slug="not-found")

        peer = request.client.host if request.client else "unknown"
        chain = forwarding.forwarded_chain(
            peer, forwarding.forwarded_for(request.headers), self.trusted
        )
        client_ip = forwarding.chain_client(chain, self.trusted)

        principal, denial = await self._authenticate(request, route)
        if denial is not None:
            return denial

        try:
            admission = await self._admit(route, client_ip, principal)
        except RedisUnavailableError as exc:
            log.warning("admission check unavailable", extra={"error": repr(exc.__cause__)})
            if principal is not None and not route.public:
                # A logged-out token must not slip through while revocations cannot be read.
                return _unavailable()
            principal, admission = None, Admission(revoked=False, decision=None)  # fail open
        if admission.revoked:
            if not route.public:
                return _problem(
                    401,
                    "token revoked",
                    slug="invalid-token",
                    title="Invalid access token",
                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
            principal = None
        decision = admission.decision
        if decision is not None and not decision.allowed:
            return _problem(
                429,
                "Rate limit exceeded; retry later.",
                slug="rate-limited",
                headers=decision.headers(),
            )

        declared = request.headers.get("content-length")
        if declared is not None and (
            not declared.isdigit() or int(declared) > self.settings.max_body_bytes
        ):
            return _too_large(self.settings.max_body_bytes)

        edge_target = self._edge_target(request, principal)
        response = None
        if edge_target is not None and self.edge is not None:
            response = self.edge.lookup(route.service, edge_target)
        if response is None:
            response = await self._forward(
                request, route, chain, request_id, declared, edge_target=edge_target
            )
        if decision is not None:
            response.headers.update(decision.headers())
        return response

    def _edge_target(self, request: Request, principal: Principal | None) -> str | None:
        """The edge cache's key for this request, or None when it may not share answers:
        only GETs of callers who see what everyone sees (no token, or a valid one without the
        admin role; an invalid or revoked token is the service's to judge)."""
        if self.edge is None or request.method != "GET":
            return None
        if "authorization" in request.headers and (principal is None or principal.is_admin):
            return None
        return _path_and_query(request)

    async def _authenticate(
        self, request: Request, route: Route
    ) -> tuple[Principal | None, Response | None]:
        authorization = request.headers.get("authorization")
        token = None
        if authorization:
            scheme, _, credentials = authorization.partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                token = credentials.strip()
        if token is None:
            if route.public:
                return None, None
            return None, _problem(
                401,
                "A bearer access token is required.",
                slug="unauthorized",
                headers={"WWW-Authenticate": "Bearer"},
            )
        try:
            return await self.verifier.verify(token), None
        except InvalidTokenError as exc:
            if route.public:
                return None, None  # the service decides what an invalid optional token means
            return None, _problem(
                401,
                exc.detail,
                slug="invalid-token",
                title="Invalid access token",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )

    async def _admit(self, route: Route, client_ip: str, principal: Principal | None) -> Admission:
        """Revocation of the caller's token and its rate limits: one Redis round trip."""
        identities: list[Identity] = []
        if self.settings.rate_limit_enabled:
            limits = self.settings.limits_for(route.budget)
            identities.append(Identity("ip", forwarding.client_block(client_ip), limits.per_ip))
            if principal is not None:
                identities.append(Identity("user", principal.user_id, limits.per_user))
        if not identities and principal is None:
            return Admission(revoked=False, decision=None)
        token_id = principal.token_id if principal is not None else None
        return await self.limiter.admit(route.budget, identities, token_id=token_id)

    async def _forward(
        self,
        request: Request,
        route: Route,
        chain: list[str],
        request_id: str,
        declared_length: str | None,
        *,
        edge_target: str | None,
    ) -> Response:
        base = self.settings.upstreams.get(route.service)
        if base is None:
            return _unavailable()
        method = request.method
        retryable = method in IDEMPOTENT_METHODS
        content: bytes | AsyncIterator[bytes] | None
        length: int | None
        streamed: _LimitedBody | None = None
        if retryable:
            # Idempotent requests are small and may be sent again: hold the body.
            try:
                content = await self._read_body(request)
            except BodyTooLargeError:
                return _too_large(self.settings.max_body_bytes)
            length = len(content) if content or declared_length is not None else None
        else:
            streamed = _LimitedBody(request, self.settings.max_body_bytes)
            content = streamed.chunks()
            length = int(declared_length) if declared_length is not None else None

        target = base.rstrip("/") + _path_and_query(request)
        headers = forwarding.upstream_headers(
            request.headers.raw,
            chain=chain,
            proto=request.url.scheme,
            host=request.headers.get("host"),
            request_id=request_id,
            content_length=length,
            trace=current_trace_headers(),
        )
        timeout = httpx.Timeout(
            self.settings.timeout_for(route.service),
            connect=self.settings.connect_timeout_seconds,
            pool=self.settings.pool_timeout_seconds,
        )
        upstream = self.client.build_request(
            method, target, headers=headers, content=content, timeout=timeout
        )
        attempts = 1 + (self.settings.retries if retryable else 0)
        epoch = self.edge.begin(route.service) if self.edge is not None and edge_target else 0
        for attempt in range(attempts):
            try:
                response = await self._send(upstream, streamed)
                break
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt + 1 < attempts:
                    UPSTREAM_RETRIES.labels(route.service, method).inc()
                    await asyncio.sleep(0.05 * 2**attempt)
                    continue
                return _failed(route, "unreachable", exc)  # never reached it: nothing changed
            except httpx.PoolTimeout as exc:
                return _failed(route, "pool_exhausted", exc)
            except httpx.TimeoutException as exc:
                self._purge_after_write(route, method, 504)
                return _failed(route, "timeout", exc)
            except BodyTooLargeError:
                return _too_large(self.settings.max_body_bytes)
            except httpx.HTTPError as exc:
                self._purge_after_write(route, method, 502)
                return _failed(route, "bad_response", exc)
        relayed = await self._relay(response)
        self._purge_after_write(route, method, relayed.status_code)
        if edge_target is not None and self.edge is not None:
            self.edge.offer(
                route.service,
                edge_target,
                epoch=epoch,
                surrogate_control=response.headers.get(SURROGATE_CONTROL),
                surrogate_key=response.headers.get(SURROGATE_KEY),
                response=relayed,
            )
        return relayed

    def _purge_after_write(self, route: Route, method: str, status: int) -> None:
        """Drop the service's shared answers here before relaying a write it may have carried
        out (read-your-writes through this replica, before the purge channel says so).

        A write refused with a 4xx changed nothing, and purging on it would let any caller
        (an anonymous cart, a customer's forbidden DELETE) empty the cache at will. Any other
        answer may come after a change: 2xx, a 3xx (POST-redirect-GET), and a 5xx or a lost
        answer (502/504 here) where the service may have committed before failing.
        """
        if self.edge is not None and method in WRITE_METHODS and not 400 <= status < 500:
            self.edge.purge(service=route.service)

    async def _read_body(self, request: Request) -> bytes:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > self.settings.max_body_bytes:
                raise BodyTooLargeError
        return bytes(body)

    async def _send(self, upstream: httpx.Request, streamed: _LimitedBody | None) -> httpx.Response:
        try:
            return await self.client.send(upstream, stream=True)
        except Exception as exc:
            # However the transport wrapped it, a body cut off at the limit is the client's fault.
            if streamed is not None and streamed.exceeded:
                raise BodyTooLargeError from exc
            raise

    async def _relay(self, upstream: httpx.Response) -> Response:
        headers = forwarding.response_headers(upstream.headers.raw)
        length = upstream.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) <= RELAY_WHOLE_MAX_BYTES:
            try:
                body = b"".join([chunk async for chunk in upstream.aiter_raw()])
            except httpx.TimeoutException:
                return _problem(504, "The service did not answer in time.", slug="upstream-timeout")
            except httpx.HTTPError:
                return _problem(502, "The service gave no valid answer.", slug="bad-gateway")
            finally:
                await upstream.aclose()
            response = Response(content=body, status_code=upstream.status_code)
            response.raw_headers = headers
            return response
        streamed = StreamingResponse(
            _raw_stream(upstream),
            status_code=upstream.status_code,
            background=BackgroundTask(upstream.aclose),
        )
        streamed.raw_headers = headers
        return streamed


class _LimitedBody:
    """The client's body streamed upstream, cut off (and remembered) past `limit` bytes."""

    def __init__(self, request: Request, limit: int) -> None:
        self._request = request
        self._limit = limit
        self.exceeded = False

    async def chunks(self) -> AsyncIterator[bytes]:
        received = 0
        async for chunk in self._request.stream():
            received += len(chunk)
            if received > self._limit:
                self.exceeded = True
                raise BodyTooLargeError
            if chunk:
                yield chunk


async def _raw_stream(upstream: httpx.Response) -> AsyncIterator[bytes]:
    """The upstream body as sent (still compressed if it was); a broken upstream ends it."""
    try:
        async for chunk in upstream.aiter_raw():
            yield chunk
    except httpx.HTTPError:
        log.warning("upstream body interrupted")


def _path_and_query(request: Request) -> str:
    """The request target as the client sent it (raw path, so encoded bytes stay encoded)."""
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    target: str = raw_path.decode("latin-1")
    return f"{target}?{request.url.query}" if request.url.query else target


def _has_dot_segments(request: Request) -> bool:
    raw = (request.scope.get("raw_path") or b"").lower()
    if b"%2f" in raw or b"%5c" in raw or b"%2e" in raw:
        return True
    return any(segment in {".", ".."} for segment in request.url.path.split("/"))


def _problem(
    status: int,
    detail: str,
    *,
    slug: str,
    title: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    return problem_response(status, detail, slug=slug, title=title, headers=headers)


def _failed(route: Route, kind: str, exc: Exception) -> Response:
    """The problem answer for an upstream failure; the log has the facts, the client does not."""
    UPSTREAM_FAILURES.labels(route.service, kind).inc()
    log.warning(
        "upstream failed",
        extra={"upstream": route.service, "kind": kind, "error": type(exc).__name__},
    )
    if kind == "timeout":
        return _problem(504, "The service did not answer in time.", slug="upstream-timeout")
    if kind == "bad_response":
        return _problem(502, "The service gave no valid answer.", slug="bad-gateway")
    return _unavailable()


def _unavailable() -> Response:
    return _problem(
        503,
        "The service is unavailable; try again shortly.",
        slug="unavailable",
        headers={"Retry-After": "5"},
    )


def _too_large(limit: int) -> Response:
    return _problem(413, f"The request body exceeds {limit} bytes.", slug="payload-too-large")
