"""Reservations per second for single-line orders, through the real consumer runtime.

A backlog of `OrderPlaced` events (one line each, spread over 100 skus with ample stock) is put on
an isolated Kafka namespace first; then an inventory service starts on a fresh database and the
clock runs from the moment its consumers joined until every order has a reservation, and until
the relay has published every resulting `StockReserved` (end to end).
"""

from __future__ import annotations

import asyncio
import time

from contracts.events.orders import OrderLine, OrderPlaced, ShippingAddress, ShippingChoice
from contracts.types import utc_now
from inventory_service.app import build_app
from inventory_service.config import InventorySettings
from shopkit.kafka import ensure_topics
from shopkit.testing import (
    KAFKA_BOOTSTRAP,
    TestTokens,
    app_client,
    fetchval,
    kafka_namespace,
    migrated_database,
    publish,
)

from contracts import new_id, topics

ORDERS = 3000
SKUS = 100

ADDRESS = ShippingAddress(
    recipient="Bench",
    street="Rua A",
    number="1",
    district="Centro",
    city="Curitiba",
    state="PR",
    cep="80010000",
)
CHOICE = ShippingChoice(
    quote_id="q", carrier="correios", service="PAC", price=1000, estimated_days=3
)


def _order(sku: str) -> OrderPlaced:
    line = OrderLine(
        sku=sku, product_id=new_id(), name=sku, quantity=1, unit_price=1000, line_total=1000
    )
    return OrderPlaced(
        order_id=new_id(),
        user_id=new_id(),
        lines=[line],
        subtotal=1000,
        discount=0,
        shipping=1000,
        total=2000,
        currency="BRL",
        shipping_address=ADDRESS,
        shipping_choice=CHOICE,
        payment_method_id="pm_card_visa",
        placed_at=utc_now(),
    )


async def _publish_backlog(namespace: str, skus: list[str]) -> None:
    # Every topic the inventory consumer subscribes to must exist, not only orders'.
    await ensure_topics(KAFKA_BOOTSTRAP, [namespace + t for t in topics.ALL])
    await publish(namespace, *(_order(skus[i % len(skus)]) for i in range(ORDERS)))


async def _wait(url: str, query: str, target: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if int(await fetchval(url, query)) >= target:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{query} did not reach {target}")


async def run() -> dict[str, object]:
    namespace = kafka_namespace()
    skus = [f"BENCH-{i:03d}" for i in range(SKUS)]
    await _publish_backlog(namespace, skus)
    async with migrated_database("inventory") as url:
        settings = InventorySettings(
            database_url=url, kafka_namespace=namespace, log_level="WARNING"
        )
        tokens = TestTokens()
        # Stock exists before the consumers start: the bench measures reservations only.
        app = build_app(settings.model_copy(update={"consumers_enabled": False}))
        async with app_client(app, tokens) as client:
            for sku in skus:
                response = await client.put(
                    f"/api/inventory/{sku}",
                    json={"on_hand": ORDERS, "reason": "bench"},
                    headers=tokens.headers(roles=("customer", "admin")),
                )
                response.raise_for_status()
        app = build_app(settings)
        async with app_client(app, tokens):
            for consumer in app.state.consumers:
                await asyncio.wait_for(consumer.ready.wait(), 60)
            started = time.perf_counter()
            await _wait(url, "SELECT count(*) FROM reservations", ORDERS)
            reserved_in = time.perf_counter() - started
            await _wait(
                url,
                "SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL "
                "AND ce_type = 'shop.inventory.stock_reserved.v1'",
                ORDERS,
            )
            published_in = time.perf_counter() - started
            held = int(
                await fetchval(url, "SELECT count(*) FROM reservations WHERE status = 'held'")
            )
    return {
        "orders": ORDERS,
        "reserved": held,
        "reservations_per_second": round(ORDERS / reserved_in, 1),
        "reserved_and_published_per_second": round(ORDERS / published_in, 1),
        "target_reservations_per_second": 500,
    }


if __name__ == "__main__":
    print(asyncio.run(run()))
