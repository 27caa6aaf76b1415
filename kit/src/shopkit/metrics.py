"""Prometheus metrics: request RED metrics, handler durations, consumer lag, outbox backlog."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Scope

HTTP_REQUESTS = Counter(
    "shop_http_requests_total", "HTTP requests handled", ["service", "method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "shop_http_request_duration_seconds",
    "HTTP request duration",
    ["service", "method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
HANDLER_DURATION = Histogram(
    "shop_event_handler_duration_seconds",
    "Time to handle one event, inbox write included",
    ["service", "consumer", "event_type", "outcome"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5),
)
CONSUMER_LAG = Gauge(
    "shop_consumer_lag",
    "Messages not yet handled per partition",
    ["service", "group", "topic", "partition"],
)
DEAD_LETTERS = Counter(
    "shop_dead_letters_total",
    "Messages parked in a dead-letter topic",
    ["service", "group", "reason"],
)
OUTBOX_BACKLOG = Gauge("shop_outbox_backlog", "Outbox rows not yet published", ["service"])
OUTBOX_PUBLISHED = Counter("shop_outbox_published_total", "Outbox rows published", ["service"])
OUTBOX_FAILURES = Counter(
    "shop_outbox_publish_failures_total", "Failed publish rounds", ["service"]
)


def metrics_response() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def route_template(scope: Scope) -> str:
    """The matched route's path template (bounded label cardinality), or `unmatched`."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    app = scope.get("app")
    for candidate in getattr(getattr(app, "router", None), "routes", []):
        match, _ = candidate.matches(scope)
        if match == Match.FULL:
            return str(getattr(candidate, "path", "unmatched"))
    return "unmatched"


async def metrics_endpoint(_: Request) -> Response:
    return metrics_response()
