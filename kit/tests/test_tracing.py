"""One checkout is one trace: HTTP -> outbox row -> Kafka headers -> consumer span."""

from __future__ import annotations

import pytest
from fastapi import APIRouter
from opentelemetry.trace import SpanKind
from shopkit.app import ServiceParts, create_service
from shopkit.db import SessionDep
from shopkit.outbox import Outbox
from shopkit.settings import ServiceSettings, settings_config
from shopkit.testing import app_client, eventually, fetchval
from shopkit.tracing import memory_exporter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts import new_id

from .probe import ProbeHappened, handlers, messaging
from .test_backbone import effect_counts


class ProbeSettings(ServiceSettings):
    model_config = settings_config("KITTEST_")
    service_name = "kittest"


router = APIRouter()


@router.post("/probe", status_code=202)
async def start_probe(session: SessionDep) -> dict[str, str]:
    event = ProbeHappened(probe_id=new_id(), value=1)
    await Outbox(session, messaging.outbox).publish(event)
    return {"probe_id": event.probe_id}


async def test_trace_context_survives_http_outbox_kafka_and_consumer(
    sessionmaker: async_sessionmaker[AsyncSession], database_url: str, namespace: str
) -> None:
    settings = ProbeSettings(
        database_url=database_url,
        kafka_namespace=namespace,
        otel_exporter="memory",
        redis_url="redis://127.0.0.1:6379/15",
    )
    app = create_service(
        settings,
        title="probe",
        description="probe",
        routers=[router],
        parts=ServiceParts(
            tables=messaging, consumers=[handlers], redis=False, verify_tokens=False
        ),
    )
    exporter = memory_exporter()
    assert exporter is not None
    exporter.clear()
    async with app_client(app) as client:
        response = await client.post("/probe")
        assert response.status_code == 202
        probe_id = response.json()["probe_id"]
        await eventually(lambda: _applied(sessionmaker, probe_id), timeout=30)

    stored = await fetchval(database_url, "SELECT headers->>'traceparent' FROM outbox")
    spans = exporter.get_finished_spans()
    server = next(s for s in spans if s.kind == SpanKind.SERVER and "/probe" in s.name)
    consumer = next(
        s for s in spans if s.kind == SpanKind.CONSUMER and ProbeHappened.ce_type in s.name
    )
    trace_id = format(server.context.trace_id, "032x")
    assert stored.split("-")[1] == trace_id
    assert consumer.context.trace_id == server.context.trace_id
    assert consumer.parent is not None
    # The handler's own database work is part of the same trace.
    assert any(
        s.context.trace_id == server.context.trace_id
        and s.parent is not None
        and s.parent.span_id == consumer.context.span_id
        for s in spans
    )


async def _applied(sessionmaker: async_sessionmaker[AsyncSession], probe_id: str) -> bool:
    return probe_id in await effect_counts(sessionmaker)


def test_without_an_exporter_spans_are_not_recorded_but_context_still_flows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shopkit import tracing

    tracing.configure_tracing("kittest", "none", "")
    monkeypatch.setattr(tracing, "_installed", set())
    incoming = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"
    with tracing.continue_trace("handle", incoming) as span:
        assert not span.is_recording()
        outgoing = tracing.current_trace_headers()["traceparent"]
    assert outgoing.split("-")[1] == "ab" * 16  # same trace
    assert outgoing.split("-")[2] != "cd" * 8  # a span of its own
