"""Shipping: signed quote issuing and carrier webhook processing, in-process on a fresh database.

Figures: quotes per second and latency percentiles for `POST /api/shipping/quotes` (projection
read, rate tables, HMAC signing of every option), and signed webhooks per second through the
full verification -> inbox -> forward-only transition -> outbox path. Bounded: a fixed number
of requests, on loopback only.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime

from contracts.events.orders import OrderConfirmed, OrderLine, ShippingAddress, ShippingChoice
from shipping_service import repository
from shipping_service.app import build_app
from shipping_service.config import ShippingSettings
from shipping_service.sandbox import SandboxCarrier
from shipping_service.service import shipments
from shopkit.app import sessionmaker_of
from shopkit.testing import app_client, kafka_namespace, migrated_database

from contracts import Envelope, new_id

QUOTES = 400
SHIPMENTS = 100
SKUS = 20


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def run() -> dict[str, object]:
    async with migrated_database("shipping") as url:
        settings = ShippingSettings(
            database_url=url,
            kafka_namespace=kafka_namespace(),
            consumers_enabled=False,
            relay_enabled=False,
        )
        app = build_app(settings)
        async with app_client(app) as client:
            skus = [f"BENCH-{i:03d}" for i in range(SKUS)]
            async with sessionmaker_of(app)() as session, session.begin():
                for i, sku in enumerate(skus):
                    await repository.upsert_product(
                        session,
                        product_id=new_id(),
                        sku=sku,
                        weight_grams=100 + 50 * i,
                        is_active=True,
                        version=1,
                    )
            latencies = []
            started = time.perf_counter()
            for i in range(QUOTES):
                items = [{"sku": skus[(i + k) % SKUS], "quantity": 1 + k} for k in range(3)]
                t0 = time.perf_counter()
                response = await client.post(
                    "/api/shipping/quotes",
                    json={
                        "destination_cep": ["01310100", "20040002", "69010000"][i % 3],
                        "items": items,
                    },
                )
                latencies.append((time.perf_counter() - t0) * 1000)
                response.raise_for_status()
            quote_seconds = time.perf_counter() - started

            tracking_numbers = []
            async with sessionmaker_of(app)() as session, session.begin():
                for _ in range(SHIPMENTS):
                    order = OrderConfirmed(
                        order_id=new_id(),
                        user_id=new_id(),
                        payment_id=new_id(),
                        lines=[
                            OrderLine(
                                sku=skus[0],
                                product_id=new_id(),
                                name="x",
                                quantity=1,
                                unit_price=100,
                                line_total=100,
                            )
                        ],
                        total=100,
                        currency="BRL",
                        shipping_address=ShippingAddress(
                            recipient="R",
                            street="S",
                            number="1",
                            district="D",
                            city="C",
                            state="SP",
                            cep="01310100",
                        ),
                        shipping_choice=ShippingChoice(
                            quote_id="q",
                            carrier="correios",
                            service="PAC",
                            price=0,
                            estimated_days=1,
                        ),
                        confirmed_at=datetime.now(UTC),
                    )
                    created = await shipments.create_for_order(
                        session=session, envelope=Envelope(data=order)
                    )
                    assert created is not None
                    tracking_numbers.append(created.tracking_number)
            carrier = SandboxCarrier(http=client, settings=settings)
            webhook_latencies = []
            started = time.perf_counter()
            for tracking_number in tracking_numbers:
                for status in ("posted", "in_transit", "out_for_delivery", "delivered"):
                    t0 = time.perf_counter()
                    reply = await carrier.send(
                        carrier="correios", tracking_number=tracking_number, status=status
                    )
                    webhook_latencies.append((time.perf_counter() - t0) * 1000)
                    reply.raise_for_status()
            webhook_seconds = time.perf_counter() - started
    return {
        "quotes": QUOTES,
        "quotes_per_second": round(QUOTES / quote_seconds, 1),
        "quote_p50_ms": round(statistics.median(latencies), 2),
        "quote_p95_ms": round(_percentile(latencies, 0.95), 2),
        "webhooks": len(webhook_latencies),
        "webhooks_per_second": round(len(webhook_latencies) / webhook_seconds, 1),
        "webhook_p50_ms": round(statistics.median(webhook_latencies), 2),
        "webhook_p95_ms": round(_percentile(webhook_latencies, 0.95), 2),
    }
