"""One server span and the RED metrics per HTTP request, as a pure ASGI middleware.

It stands where OpenTelemetry's generic ASGI instrumentation stood. That one cost about 110 µs
of CPU per request even with nothing exported (a bare FastAPI route costs under 40): it
collected every semantic-convention attribute, matched the request against every route a
second time, recorded its own metric set and opened a span per ASGI message. Here the span
continues the caller's trace (so the outbox, Kafka and outgoing calls carry it on), is named by
the route template once routing has found it, and gets its attributes only when it records.
"""

from __future__ import annotations

import re
import time
from contextlib import AbstractContextManager, nullcontext

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shopkit.metrics import HTTP_DURATION, HTTP_REQUESTS, route_template

tracer = trace.get_tracer("shopkit.http")

_PROPAGATED = frozenset({b"traceparent", b"tracestate", b"baggage"})

UNTRACED = re.compile(r"^/(?:health(?:/.*)?|metrics)$")
"""Probes and scrapes: counted in the metrics, never a span (they would drown the traces)."""


class HttpTelemetry:
    """A SERVER span continuing the caller's trace, and the request counters, per request."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method: str = scope["method"]
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        span_scope: AbstractContextManager[Span] = (
            nullcontext(INVALID_SPAN)
            if UNTRACED.match(scope["path"])
            else tracer.start_as_current_span(
                method, context=_callers_context(scope), kind=SpanKind.SERVER
            )
        )
        with span_scope as span:
            try:
                await self.app(scope, receive, record_status)
            finally:
                route = route_template(scope)
                HTTP_REQUESTS.labels(self.service, method, route, str(status)).inc()
                HTTP_DURATION.labels(self.service, method, route).observe(
                    time.perf_counter() - started
                )
                if span.is_recording():
                    span.update_name(f"{method} {route}")
                    span.set_attributes(
                        {
                            "http.request.method": method,
                            "http.route": route,
                            "url.path": scope["path"],
                            "http.response.status_code": status,
                        }
                    )
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))


def _callers_context(scope: Scope) -> Context:
    carrier = {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in scope["headers"]
        if name in _PROPAGATED
    }
    return propagate.extract(carrier)
