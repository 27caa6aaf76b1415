"""OpenTelemetry: tracer provider set-up and W3C context carried through outbox rows and Kafka.

One checkout is one trace: the HTTP span's context is written into the outbox row, the relay
puts it in the Kafka headers, and each consumer continues the trace from those headers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Literal

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, Span, SpanKind, TraceState
from opentelemetry.util.types import Attributes

ExporterKind = Literal["none", "otlp", "console", "memory"]

_memory_exporter: InMemorySpanExporter | None = None
_installed: set[str] = set()


class _RecordWhenExporting(Sampler):
    """Record spans only when an exporter is installed; otherwise make non-recording spans.

    Non-recording spans still carry trace and span ids, so `traceparent` keeps flowing through
    HTTP, outbox rows and Kafka, at a fraction of the CPU of recording spans nobody exports.
    A sampled remote parent is followed; an unsampled one is not overridden.
    """

    def should_sample(  # noqa: PLR0917 - the signature OpenTelemetry's Sampler defines
        self,
        parent_context: otel_context.Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if not _installed:
            return SamplingResult(Decision.DROP)
        parent = trace.get_current_span(parent_context).get_span_context()
        if parent.is_valid and parent.is_remote and not parent.trace_flags.sampled:
            return SamplingResult(Decision.DROP)
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)

    def get_description(self) -> str:
        return "RecordWhenExporting"


def configure_tracing(service: str, exporter: ExporterKind, endpoint: str) -> None:
    """Install the SDK tracer provider once per process and add the requested exporter once.

    With no exporter, spans are not recorded but keep their ids (see `_RecordWhenExporting`),
    so W3C context still propagates through outbox rows and Kafka.
    """
    global _memory_exporter
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider(
            resource=Resource.create({"service.name": service}), sampler=_RecordWhenExporting()
        )
        trace.set_tracer_provider(provider)
    if exporter in _installed or exporter == "none":
        return
    _installed.add(exporter)
    if exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        span_exporter: SpanExporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
        provider.add_span_processor(BatchSpanProcessor(span_exporter))
    elif exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    elif exporter == "memory":
        _memory_exporter = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(_memory_exporter))


def memory_exporter() -> InMemorySpanExporter | None:
    """The in-memory exporter when `otel_exporter=memory` (tests read finished spans here)."""
    return _memory_exporter


def tracer(name: str = "shop") -> trace.Tracer:
    return trace.get_tracer(name)


def current_trace_headers() -> dict[str, str]:
    """`traceparent`/`tracestate` of the active span, empty when there is none."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@contextmanager
def continue_trace(
    name: str,
    traceparent: str | None,
    tracestate: str | None = None,
    *,
    kind: SpanKind = SpanKind.CONSUMER,
    attributes: dict[str, str | int] | None = None,
) -> Iterator[Span]:
    """A span whose parent is the remote context carried by an event."""
    carrier = {"traceparent": traceparent} if traceparent else {}
    if tracestate:
        carrier["tracestate"] = tracestate
    parent = propagate.extract(carrier)
    token = otel_context.attach(parent)
    try:
        with tracer().start_as_current_span(name, kind=kind, attributes=attributes) as span:
            yield span
    finally:
        otel_context.detach(token)
