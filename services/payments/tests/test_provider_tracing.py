"""Each call to Stripe is a client span of the trace that made it, named by its path template
(an id in the name would make every span name unique)."""

from __future__ import annotations

from opentelemetry.trace import SpanKind
from payments_service.provider import AuthorizeRequest
from payments_service.stripe_provider import StripeProvider
from shopkit.tracing import configure_tracing, memory_exporter, tracer

from contracts import new_id


async def test_each_provider_call_is_a_client_span_of_the_callers_trace(localstripe: str) -> None:
    configure_tracing("payments", "memory", "")
    exporter = memory_exporter()
    assert exporter is not None
    exporter.clear()
    provider = StripeProvider(
        api_key="sk_test_tracing", api_base=localstripe, webhook_secret="whsec_tracing"
    )
    try:
        with tracer().start_as_current_span("authorize an order") as caller:
            intent = await provider.authorize(
                AuthorizeRequest(
                    amount=1234, currency="BRL", payment_method="pm_card_visa", metadata={}
                ),
                idempotency_key=new_id(),
            )
            await provider.retrieve(intent.id)
    finally:
        await provider.close()
    spans = [s for s in exporter.get_finished_spans() if s.name.startswith("stripe ")]
    exporter.clear()

    assert [s.name for s in spans] == [
        "stripe POST /v1/payment_intents",
        "stripe GET /v1/payment_intents/{id}",
    ]
    for span in spans:
        assert span.kind == SpanKind.CLIENT
        assert span.parent is not None
        assert span.parent.span_id == caller.get_span_context().span_id
