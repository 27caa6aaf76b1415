"""Payments benchmark: authorizations through the real pipeline, and the webhook receiver.

Runs the payments app in-process on a fresh database and Kafka namespace, against a private
localstripe started from infra/local/localstripe_server.py (so the figures do not depend on, or
disturb, the shared one). Figures:

* saga authorizations: OrderPlaced + StockReserved published to Kafka -> PaymentAuthorized
  written to the outbox (risk checks, payment method lookup, create+confirm at the provider,
  outbox write), per-order latency and throughput;
* webhook receiver: signed `payment_intent.amount_capturable_updated` posts, latency of the 2xx
  answer, and the time until all are processed (re-fetch from the provider included);
* provider round trip: create+confirm of one manual-capture intent, sequentially.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from contracts.events.inventory import StockLine, StockReserved
from contracts.events.orders import OrderLine, OrderPlaced, ShippingAddress, ShippingChoice
from gateway.testing import free_port
from payments_service.app import build_app
from payments_service.config import PaymentsSettings
from payments_service.models import PaymentAttempt, StripeEvent
from payments_service.provider import AuthorizeRequest
from payments_service.runtime import Payments
from pydantic import SecretStr
from shopkit.kafka import create_producer, ensure_topics
from shopkit.testing import KAFKA_BOOTSTRAP, app_client, kafka_namespace, migrated_database
from sqlalchemy import func, select

from contracts import Envelope, encode, new_id

ORDERS = 200
WEBHOOKS = 200
PROVIDER_CALLS = 50
SECRET = "whsec_bench_local_development_only"
KEY = "sk_test_bench"
LAUNCHER = Path(__file__).resolve().parents[1] / "infra" / "local" / "localstripe_server.py"


async def run() -> dict[str, object]:
    with tempfile.TemporaryDirectory() as state:
        port = free_port()
        stripe = await asyncio.create_subprocess_exec(
            sys.executable,
            str(LAUNCHER),
            "--port",
            str(port),
            "--state-file",
            str(Path(state) / "store.pickle"),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            await _wait_ready(base)
            return await _bench(base)
        finally:
            stripe.terminate()
            await stripe.wait()


async def _bench(stripe_base: str) -> dict[str, object]:
    namespace = kafka_namespace()
    figures: dict[str, object] = {}
    async with migrated_database("payments") as url:
        settings = PaymentsSettings(
            database_url=url,
            kafka_namespace=namespace,
            environment="test",
            stripe_api_base=stripe_base,
            stripe_api_key=SecretStr(KEY),
            stripe_webhook_secret=SecretStr(SECRET),
            sweep_interval_seconds=3600,
            webhook_poll_seconds=0.2,
            risk_user_attempts_medium=10_000,
            risk_user_attempts_high=20_000,
            risk_ip_attempts_medium=10_000,
            risk_ip_attempts_high=20_000,
            risk_card_attempts_medium=10_000,
            risk_card_attempts_high=20_000,
        )
        await ensure_topics(
            KAFKA_BOOTSTRAP, [f"{namespace}orders.events", f"{namespace}inventory.events"]
        )
        app = build_app(settings)
        async with app_client(app) as client:
            payments: Payments = app.state.payments
            figures.update(await _saga(payments, namespace))
            figures.update(await _webhooks(client, payments, stripe_base))
            figures.update(await _provider(payments))
    return figures


async def _saga(payments: Payments, namespace: str) -> dict[str, object]:
    producer = create_producer(KAFKA_BOOTSTRAP, client_id=f"{namespace}bench")
    await producer.start()
    published: dict[str, float] = {}
    started = time.time()
    try:
        for _ in range(ORDERS):
            placed = _order()
            for event in (
                placed,
                StockReserved(
                    order_id=placed.order_id,
                    reservation_id=new_id(),
                    lines=[StockLine(sku="SKU-1", quantity=1)],
                    expires_at=datetime.now(UTC) + timedelta(minutes=15),
                ),
            ):
                record = encode(Envelope(data=event))
                await producer.send(
                    namespace + record.topic,
                    value=record.value,
                    key=record.key,
                    headers=record.headers,
                )
            published[placed.order_id] = time.time()
        await producer.flush()
    finally:
        await producer.stop()

    deadline = time.monotonic() + 180
    rows: list[tuple[str, datetime]] = []
    while time.monotonic() < deadline:
        async with payments.sessionmaker() as session:
            result = await session.execute(
                select(PaymentAttempt.order_id, PaymentAttempt.authorized_at).where(
                    PaymentAttempt.authorized_at.is_not(None)
                )
            )
            rows = [(str(order_id), at) for order_id, at in result.all() if at is not None]
        if len(rows) >= ORDERS:
            break
        await asyncio.sleep(0.25)
    latencies = sorted(
        (at.timestamp() - published[order_id]) * 1000
        for order_id, at in rows
        if order_id in published
    )
    finished = max((at.timestamp() for _, at in rows), default=time.time())
    return {
        "saga_orders": ORDERS,
        "saga_authorized": len(rows),
        "saga_authorizations_per_s": round(len(rows) / max(finished - started, 1e-6), 1),
        "saga_latency_ms_p50": _pct(latencies, 50),
        "saga_latency_ms_p95": _pct(latencies, 95),
        "saga_latency_ms_max": round(latencies[-1], 1) if latencies else None,
    }


async def _webhooks(
    client: httpx.AsyncClient, payments: Payments, stripe_base: str
) -> dict[str, object]:
    async with payments.sessionmaker() as session:
        intent_ids = list(
            await session.scalars(
                select(PaymentAttempt.provider_payment_id)
                .where(PaymentAttempt.provider_payment_id.is_not(None))
                .limit(WEBHOOKS)
            )
        )
    async with httpx.AsyncClient(base_url=stripe_base, auth=(KEY, "")) as stripe:
        intents = [(await stripe.get(f"/v1/payment_intents/{i}")).json() for i in intent_ids]
    answers: list[float] = []
    started = time.monotonic()
    for intent in intents:
        payload = json.dumps(
            {
                "id": f"evt_bench_{new_id().replace('-', '')}",
                "object": "event",
                "type": "payment_intent.amount_capturable_updated",
                "created": int(time.time()),
                "data": {"object": intent},
            }
        ).encode()
        t = int(time.time())
        signature = hmac.new(SECRET.encode(), f"{t}.".encode() + payload, hashlib.sha256)
        sent = time.monotonic()
        response = await client.post(
            "/api/payments/webhooks/stripe",
            content=payload,
            headers={"Stripe-Signature": f"t={t},v1={signature.hexdigest()}"},
        )
        response.raise_for_status()
        answers.append((time.monotonic() - sent) * 1000)
    received = time.monotonic()
    deadline = received + 120
    while time.monotonic() < deadline:
        async with payments.sessionmaker() as session:
            waiting = await session.scalar(
                select(func.count())
                .select_from(StripeEvent)
                .where(StripeEvent.processed_at.is_(None))
            )
        if not waiting:
            break
        await asyncio.sleep(0.1)
    processed = time.monotonic()
    answers.sort()
    return {
        "webhooks": len(intents),
        "webhook_answer_ms_p50": _pct(answers, 50),
        "webhook_answer_ms_p95": _pct(answers, 95),
        "webhooks_processed_per_s": round(len(intents) / max(processed - started, 1e-6), 1),
    }


async def _provider(payments: Payments) -> dict[str, object]:
    timings: list[float] = []
    for _ in range(PROVIDER_CALLS):
        request = AuthorizeRequest(
            amount=1_000, currency="BRL", payment_method="pm_card_visa", metadata={"bench": "1"}
        )
        started = time.monotonic()
        await payments.provider.authorize(request, idempotency_key=f"bench:{new_id()}")
        timings.append((time.monotonic() - started) * 1000)
    timings.sort()
    return {
        "provider_authorize_ms_p50": _pct(timings, 50),
        "provider_authorize_ms_p95": _pct(timings, 95),
    }


def _order() -> OrderPlaced:
    return OrderPlaced(
        order_id=new_id(),
        user_id=new_id(),
        lines=[
            OrderLine(
                sku="SKU-1",
                product_id=new_id(),
                name="Caneca",
                quantity=1,
                unit_price=10_000,
                line_total=10_000,
            )
        ],
        subtotal=10_000,
        discount=0,
        shipping=1_990,
        total=11_990,
        currency="BRL",
        shipping_address=ShippingAddress(
            recipient="Ana",
            street="Rua A",
            number="1",
            district="Centro",
            city="Sao Paulo",
            state="SP",
            cep="01001000",
        ),
        shipping_choice=ShippingChoice(
            quote_id="q", carrier="correios", service="sedex", price=1_990, estimated_days=3
        ),
        payment_method_id="pm_card_visa",
        customer_ip="10.0.0.1",
        placed_at=datetime.now(UTC),
    )


def _pct(values: list[float], percentile: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 1)
    return round(statistics.quantiles(values, n=100)[percentile - 1], 1)


async def _wait_ready(base: str) -> None:
    async with httpx.AsyncClient(base_url=base, auth=(KEY, ""), timeout=1) as client:
        for _ in range(100):
            try:
                (await client.get("/v1/customers")).raise_for_status()
                return
            except httpx.HTTPError:
                await asyncio.sleep(0.1)
    raise RuntimeError("localstripe did not start")


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run()), indent=2))
