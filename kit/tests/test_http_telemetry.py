"""`HttpTelemetry`: a server span continuing the caller's trace, and the RED metrics."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import REGISTRY
from shopkit.http_telemetry import HttpTelemetry
from shopkit.tracing import configure_tracing, memory_exporter

TRACE_ID = "ab" * 16
CALLER_SPAN_ID = "cd" * 8


def _app() -> FastAPI:
    app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})  # as services

    @app.get("/items/{item_id}")
    async def item(item_id: str) -> dict[str, str]:
        return {"id": item_id}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    @app.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(HttpTelemetry, service="telemetrytest")
    return app


def _count(route: str, status: str) -> float:
    labels = {"service": "telemetrytest", "method": "GET", "route": route, "status": status}
    return REGISTRY.get_sample_value("shop_http_requests_total", labels) or 0.0


async def test_a_request_is_one_server_span_of_the_callers_trace_and_is_counted() -> None:
    configure_tracing("telemetrytest", "memory", "")
    exporter = memory_exporter()
    assert exporter is not None
    exporter.clear()
    before = _count("/items/{item_id}", "200"), _count("/boom", "500")
    health_before = _count("/health/live", "200")
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        traceparent = f"00-{TRACE_ID}-{CALLER_SPAN_ID}-01"
        ok = await client.get("/items/42", headers={"traceparent": traceparent})
        failed = await client.get("/boom")
        live = await client.get("/health/live")
    assert (ok.status_code, failed.status_code, live.status_code) == (200, 500, 200)

    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert set(spans) == {"GET /items/{item_id}", "GET /boom"}  # probes are never traced
    served = spans["GET /items/{item_id}"]
    assert served.kind == SpanKind.SERVER
    assert format(served.context.trace_id, "032x") == TRACE_ID
    assert served.parent is not None and format(served.parent.span_id, "016x") == CALLER_SPAN_ID
    assert served.attributes is not None
    assert served.attributes["http.route"] == "/items/{item_id}"
    assert served.attributes["url.path"] == "/items/42"
    assert served.attributes["http.response.status_code"] == 200
    broken = spans["GET /boom"]
    assert broken.status.status_code == StatusCode.ERROR
    assert broken.parent is None  # no traceparent: a trace of its own
    assert any(event.name == "exception" for event in broken.events)

    assert _count("/items/{item_id}", "200") == before[0] + 1
    assert _count("/boom", "500") == before[1] + 1
    assert _count("/health/live", "200") == health_before + 1
