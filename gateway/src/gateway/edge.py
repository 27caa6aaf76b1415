"""The gateway's outermost layer: proxied paths go straight to the proxy.

The framework stack (routing, several middlewares, the generic ASGI tracing middleware with its
per-message spans) costs about as much per request as a small upstream call itself, and every
API call pays it. Proxied requests therefore skip it and get, here, exactly what they need: one
server span continuing the client's trace, the same RED metrics as every service, CORS, and a
problem document if anything unexpected happens. The gateway's own endpoints (health, docs,
merged OpenAPI, metrics) still go through the full stack.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from shopkit.metrics import HTTP_DURATION, HTTP_REQUESTS
from shopkit.problems import problem_response
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.routes import RouteTable

log = logging.getLogger(__name__)
tracer = trace.get_tracer("gateway")

Handler = Callable[[Request], Awaitable[Response]]


def is_proxied(path: str) -> bool:
    return path.startswith("/api/") or path == "/.well-known/jwks.json"


class ProxyEndpoint:
    """ASGI app for one proxied request: span, metrics, error safety around `handler`."""

    def __init__(self, handler: Handler, *, service: str = "gateway") -> None:
        self._handler = handler
        self._service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request = Request(scope, receive)
        method = request.method
        upstream = RouteTable.service_for(request.url.path) or "none"
        route = f"/api/{upstream}" if upstream != "none" else "unmatched"
        parent = propagate.extract(request.headers)
        status = 500
        with tracer.start_as_current_span(
            f"{method} {route}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "http.route": route,
                "url.path": request.url.path,
                "shop.upstream": upstream,
            },
        ) as span:
            try:
                response = await self._handler(request)
            except Exception:
                log.exception("proxy failed unexpectedly", extra={"path": request.url.path})
                span.set_status(Status(StatusCode.ERROR))
                response = problem_response(500, "An unexpected error occurred.")
            status = response.status_code
            span.set_attribute("http.response.status_code", status)
            try:
                await response(scope, receive, send)
            finally:
                HTTP_REQUESTS.labels(self._service, method, route, str(status)).inc()
                HTTP_DURATION.labels(self._service, method, route).observe(
                    time.perf_counter() - started
                )


class Edge:
    """Sends proxied paths to `proxy`, everything else to the full application stack."""

    def __init__(self, app: ASGIApp, proxy: ASGIApp) -> None:
        self._app = app
        self._proxy = proxy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_proxied(scope["path"]):
            await self._proxy(scope, receive, send)
        else:
            await self._app(scope, receive, send)
