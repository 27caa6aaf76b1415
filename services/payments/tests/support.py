"""Test helpers: event factories, a Kafka publisher and collector, Stripe-style webhook signing,
and a client for localstripe's API and test controls."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from contracts.events.inventory import StockLine, StockReserved
from contracts.events.orders import (
    OrderCancelled,
    OrderLine,
    OrderPlaced,
    ShippingAddress,
    ShippingChoice,
)
from contracts.events.shipping import ShipmentDispatched
from shopkit.kafka import create_consumer, create_producer
from shopkit.testing import KAFKA_BOOTSTRAP, eventually

from contracts import Envelope, Event, decode, encode, new_id

LOCAL_KEY = "sk_test_payments_tests"
WEBHOOK_SECRET = "whsec_payments_tests_local_development_only"

VISA = "4242424242424242"
DECLINED = "4000000000000002"
INSUFFICIENT_FUNDS = "4000000000009995"
THREE_DS_2 = "4000000000003220"
THREE_DS_REQUIRED = "4000002500003155"
BRAZIL = "4000000760000002"


# ------------------------------------------------------------------------------ events


def random_ip() -> str:
    return f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


def order_placed(
    *,
    order_id: str | None = None,
    user_id: str | None = None,
    total: int = 15_990,
    payment_method_id: str = "pm_card_visa",
    country: str = "BR",
    customer_ip: str | None = None,
    currency: str = "BRL",
) -> OrderPlaced:
    shipping = 1_990
    return OrderPlaced(
        order_id=order_id or new_id(),
        user_id=user_id or new_id(),
        lines=[
            OrderLine(
                sku="SKU-1",
                product_id=new_id(),
                name="Caneca",
                quantity=1,
                unit_price=total - shipping,
                line_total=total - shipping,
            )
        ],
        subtotal=total - shipping,
        discount=0,
        shipping=shipping,
        total=total,
        currency=currency,
        shipping_address=ShippingAddress(
            recipient="Ana",
            street="Rua A",
            number="1",
            district="Centro",
            city="Sao Paulo",
            state="SP",
            cep="01001000",
            country=country,
        ),
        shipping_choice=ShippingChoice(
            quote_id="q", carrier="correios", service="sedex", price=shipping, estimated_days=3
        ),
        payment_method_id=payment_method_id,
        customer_ip=customer_ip or random_ip(),
        placed_at=datetime.now(UTC),
    )


def stock_reserved(order_id: str, reservation_id: str | None = None) -> StockReserved:
    return StockReserved(
        order_id=order_id,
        reservation_id=reservation_id or new_id(),
        lines=[StockLine(sku="SKU-1", quantity=1)],
        expires_at=datetime.now(UTC) + timedelta(minutes=15),
    )


def order_cancelled(
    placed: OrderPlaced, reason: str = "customer_request", previous: str = "CONFIRMED"
) -> OrderCancelled:
    return OrderCancelled(
        order_id=placed.order_id,
        user_id=placed.user_id,
        reason=reason,  # type: ignore[arg-type]
        previous_status=previous,
        cancelled_at=datetime.now(UTC),
    )  # type: ignore[arg-type]


def shipment_dispatched(placed: OrderPlaced) -> ShipmentDispatched:
    return ShipmentDispatched(
        shipment_id=new_id(),
        order_id=placed.order_id,
        user_id=placed.user_id,
        carrier="correios",
        tracking_number="BR123",
        dispatched_at=datetime.now(UTC),
    )


class EventBus:
    """Publishes synthetic saga events into the test's Kafka namespace."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.producer: AIOKafkaProducer = create_producer(
            KAFKA_BOOTSTRAP, client_id=f"{namespace}tests"
        )

    async def start(self) -> None:
        await self.producer.start()

    async def stop(self) -> None:
        await self.producer.stop()

    async def publish(self, *events: Event | Envelope[Event]) -> list[Envelope[Event]]:
        sent = []
        for item in events:
            envelope = item if isinstance(item, Envelope) else Envelope(data=item)
            record = encode(envelope)
            await self.producer.send_and_wait(
                self.namespace + record.topic,
                value=record.value,
                key=record.key,
                headers=record.headers,
            )
            sent.append(envelope)
        return sent


class PaymentEvents:
    """Every message the app published on its `payments.events` topic, by order id."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.by_order: dict[str, list[Envelope[Event]]] = defaultdict(list)
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._consumer = create_consumer(
            KAFKA_BOOTSTRAP,
            group_id=f"{self.namespace}collector",
            client_id=f"{self.namespace}collector",
        )
        self._consumer.subscribe([f"{self.namespace}payments.events"])
        await self._consumer.start()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    envelope = decode(record.headers, record.value)  # type: ignore[arg-type]
                    self.by_order[envelope.subject].append(envelope)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._consumer is not None:
            await self._consumer.stop()

    def of(self, order_id: str, event_type: type[Event] | None = None) -> list[Any]:
        found = [e.data for e in self.by_order.get(order_id, [])]
        return [e for e in found if event_type is None or isinstance(e, event_type)]

    async def wait_for(self, order_id: str, event_type: type[Event], timeout: float = 20) -> Any:
        async def check() -> Any:
            found = self.of(order_id, event_type)
            return found[0] if found else None

        return await eventually(check, timeout=timeout)


# ------------------------------------------------------------------------------ webhooks


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """A `Stripe-Signature` header, computed the way Stripe does."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def stripe_event(
    event_type: str, obj: dict[str, Any], *, created: int | None = None, event_id: str | None = None
) -> bytes:
    return json.dumps(
        {
            "id": event_id or f"evt_test_{new_id().replace('-', '')}",
            "object": "event",
            "type": event_type,
            "created": int(time.time()) if created is None else created,
            "livemode": False,
            "api_version": "2026-10-28.endive",
            "data": {"object": obj},
        }
    ).encode()


# ------------------------------------------------------------------------------ localstripe


class Stripe:
    """localstripe's API and test controls, as a test (or a customer's browser) uses them."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = httpx.AsyncClient(base_url=base, auth=(LOCAL_KEY, ""), timeout=10)

    async def close(self) -> None:
        await self.http.aclose()

    async def card(self, number: str) -> str:
        """A PaymentMethod created from a test card number (as Stripe.js would)."""
        response = await self.http.post(
            "/v1/payment_methods",
            data={
                "type": "card",
                "card[number]": number,
                "card[exp_month]": "12",
                "card[exp_year]": "2034",
                "card[cvc]": "123",
            },
        )
        response.raise_for_status()
        return str(response.json()["id"])

    async def intents_of(self, order_id: str) -> list[dict[str, Any]]:
        response = await self.http.get(
            "/v1/payment_intents/search",
            params={"query": f"metadata['order_id']:'{order_id}'", "limit": 100},
        )
        response.raise_for_status()
        return list(response.json()["data"])

    async def intent(self, intent_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/v1/payment_intents/{intent_id}")
        response.raise_for_status()
        return dict(response.json())

    async def create_intent(self, **data: str) -> dict[str, Any]:
        response = await self.http.post("/v1/payment_intents", data=data)
        response.raise_for_status()
        return dict(response.json())

    async def authenticate(self, intent: dict[str, Any], *, success: bool = True) -> str:
        """Complete the 3-D Secure challenge with the publishable key, as Stripe.js does."""
        async with httpx.AsyncClient(base_url=self.base) as browser:
            response = await browser.post(
                f"/v1/payment_intents/{intent['id']}/_authenticate",
                data={
                    "key": "pk_test_payments_tests",
                    "client_secret": intent["client_secret"],
                    "success": "true" if success else "false",
                },
            )
        response.raise_for_status()
        return str(response.json()["status"])

    async def refund(self, intent_id: str, amount: int) -> dict[str, Any]:
        response = await self.http.post(
            "/v1/refunds", data={"payment_intent": intent_id, "amount": str(amount)}
        )
        response.raise_for_status()
        return dict(response.json())

    async def delay(
        self, path: str, seconds: float, *, method: str = "POST", count: int = 1
    ) -> None:
        response = await self.http.post(
            "/_config/delays",
            data={"path": path, "seconds": str(seconds), "method": method, "count": str(count)},
        )
        response.raise_for_status()

    async def refuse(self, path: str, status: int, *, method: str = "POST", count: int = 1) -> None:
        """Answer the next `count` matching requests with `status` (429 or 5xx), not acting."""
        response = await self.http.post(
            "/_config/delays",
            data={
                "path": path,
                "seconds": "0.01",
                "method": method,
                "count": str(count),
                "status": str(status),
            },
        )
        response.raise_for_status()

    async def forget_keys(self, prefix: str) -> None:
        """Forget idempotency keys starting with `prefix`, as Stripe does after 24 hours."""
        (
            await self.http.delete("/_config/idempotency", params={"prefix": prefix})
        ).raise_for_status()

    async def clear_delays(self) -> None:
        (await self.http.delete("/_config/delays")).raise_for_status()

    async def register_webhook(self, webhook_id: str, url: str) -> None:
        response = await self.http.post(
            f"/_config/webhooks/{webhook_id}", data={"url": url, "secret": WEBHOOK_SECRET}
        )
        response.raise_for_status()

    async def delete_webhook(self, webhook_id: str) -> None:
        await self.http.delete(f"/_config/webhooks/{webhook_id}")
