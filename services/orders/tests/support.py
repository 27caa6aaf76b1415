"""Test support: the running orders app, a Kafka bus for synthetic events of the other
contexts, a watcher of what orders publishes, and factories (products, quotes, addresses)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import jwt
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from contracts.events.catalog import PriceChanged, ProductCreated, ProductDeactivated
from contracts.events.inventory import StockLine, StockReserved
from contracts.events.orders import OrderCancellationRequested, OrderPlaced
from contracts.events.payments import PaymentAuthorized
from contracts.events.shipping import ShipmentCancelled
from fastapi import FastAPI
from orders_service.config import OrdersSettings
from shopkit.kafka import create_consumer, create_producer
from shopkit.quotes import QuoteItem, SignedQuote, sign_quote
from shopkit.testing import KAFKA_BOOTSTRAP, TestTokens, eventually
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import Envelope, Event, decode, encode, new_id, topics

E = TypeVar("E", bound=Event)

PROBLEM_JSON = "application/problem+json"


class Bus:
    """Publishes events of other contexts into the test's Kafka namespace."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.producer: AIOKafkaProducer = create_producer(KAFKA_BOOTSTRAP, client_id="orders-tests")

    async def start(self) -> None:
        await self.producer.start()

    async def stop(self) -> None:
        await self.producer.stop()

    async def send(self, envelope: Envelope[Event]) -> Envelope[Event]:
        record = encode(envelope)
        await self.producer.send_and_wait(
            self.namespace + record.topic,
            value=record.value,
            key=record.key,
            headers=record.headers,
        )
        return envelope

    async def publish(
        self, event: Event, *, correlation_id: str = "", causation_id: str | None = None
    ) -> Envelope[Event]:
        return await self.send(
            Envelope(data=event, correlation_id=correlation_id, causation_id=causation_id)
        )


class Watcher:
    """Collects everything published on `orders.events` in the namespace, by order id."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.by_order: dict[str, list[Envelope[Event]]] = defaultdict(list)
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._consumer = create_consumer(
            KAFKA_BOOTSTRAP,
            group_id=f"{self.namespace}orders-tests-watcher",
            client_id="orders-tests-watcher",
        )
        self._consumer.subscribe([self.namespace + topics.ORDERS])
        await self._consumer.start()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self._consumer is not None
        async for record in self._consumer:
            envelope = decode(record.headers, record.value)  # type: ignore[arg-type]
            self.by_order[envelope.subject].append(envelope)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    def of_type(self, order_id: str, event_type: type[E]) -> list[Envelope[E]]:
        return [e for e in self.by_order.get(order_id, []) if isinstance(e.data, event_type)]  # type: ignore[misc]

    async def wait_for(
        self, order_id: str, event_type: type[E], count: int = 1
    ) -> list[Envelope[E]]:
        async def seen() -> list[Envelope[E]] | None:
            found = self.of_type(order_id, event_type)
            return found if len(found) >= count else None

        result: list[Envelope[E]] = await eventually(seen, timeout=30)
        return result


@dataclass
class Harness:
    app: FastAPI
    client: httpx.AsyncClient
    tokens: TestTokens
    bus: Bus
    watcher: Watcher
    settings: OrdersSettings
    engine: AsyncEngine
    versions: dict[str, int] = field(default_factory=dict)

    # ------------------------------------------------------------ identities

    def user(self) -> dict[str, str]:
        return self.tokens.headers(new_id())

    def admin(self) -> dict[str, str]:
        return self.tokens.headers(new_id(), roles=("customer", "admin"))

    @staticmethod
    def user_id(headers: dict[str, str]) -> str:
        token = headers["Authorization"].removeprefix("Bearer ")
        return str(jwt.decode(token, options={"verify_signature": False})["sub"])

    # ------------------------------------------------------------ catalog

    async def product(
        self,
        *,
        price: int = 1990,
        currency: str = "BRL",
        active: bool = True,
        name: str | None = None,
    ) -> ProductCreated:
        """A product known to the orders projection (published as a catalog event)."""
        product_id = new_id()
        sku = f"SKU-{product_id[-12:]}"
        event = ProductCreated(
            product_id=product_id,
            sku=sku,
            name=name or f"Product {sku}",
            slug=sku.lower(),
            price=price,
            currency=currency,
            is_active=active,
            version=1,
            occurred_at=datetime.now(UTC),
        )
        self.versions[product_id] = 1
        await self.bus.publish(event)
        await self.wait_for_product(product_id, version=1)
        return event

    async def change_price(
        self,
        product: ProductCreated,
        new_price: int,
        *,
        version: int | None = None,
        wait: bool = True,
    ) -> None:
        if version is None:
            version = self.versions[product.product_id] + 1
        self.versions[product.product_id] = max(version, self.versions[product.product_id])
        await self.bus.publish(
            PriceChanged(
                product_id=product.product_id,
                sku=product.sku,
                old_price=product.price,
                new_price=new_price,
                currency=product.currency,
                version=version,
                occurred_at=datetime.now(UTC),
            )
        )
        if wait:
            await self.wait_for_product(
                product.product_id, version=self.versions[product.product_id]
            )

    async def deactivate(self, product: ProductCreated) -> None:
        version = self.versions[product.product_id] + 1
        self.versions[product.product_id] = version
        await self.bus.publish(
            ProductDeactivated(
                product_id=product.product_id,
                sku=product.sku,
                version=version,
                occurred_at=datetime.now(UTC),
            )
        )
        await self.wait_for_product(product.product_id, version=version)

    async def wait_for_product(self, product_id: str, *, version: int) -> None:
        async def applied() -> bool:
            value = await self.scalar(
                "SELECT version FROM products WHERE product_id = :id", id=product_id
            )
            return value is not None and value >= version

        await eventually(applied, timeout=30)

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.engine.connect() as conn:
            return (await conn.execute(text(sql), params)).scalar()

    # ------------------------------------------------------------ cart and checkout

    async def fill_cart(
        self, headers: dict[str, str], *lines: tuple[ProductCreated, int]
    ) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for product, quantity in lines:
            response = await self.client.post(
                "/api/cart/items", headers=headers, json={"sku": product.sku, "quantity": quantity}
            )
            assert response.status_code == 200, response.text
            body = response.json()
        return body

    def quote(
        self,
        items: Sequence[tuple[str, int]],
        *,
        cep: str = "01310100",
        price: int = 1500,
        expires_in: timedelta = timedelta(minutes=30),
        secret: str | None = None,
        currency: str = "BRL",
    ) -> str:
        quote = SignedQuote(
            carrier="correios",
            service="PAC",
            price=price,
            currency=currency,
            estimated_days=5,
            destination_cep=cep,
            items=tuple(QuoteItem(sku=s, quantity=q) for s, q in items),
            expires_at=datetime.now(UTC) + expires_in,
        )
        return sign_quote(quote, secret or self.settings.quote_signing_secret.get_secret_value())

    @staticmethod
    def address(**changes: Any) -> dict[str, Any]:
        return {
            "recipient": "Maria Silva",
            "street": "Avenida Paulista",
            # Not digits alone: the erasure tests look for each personal value in a stored
            # order, whose ids and timestamps are full of digit runs ("16.191578").
            "number": "1578 fundos",
            "complement": "apto 12",
            "district": "Bela Vista",
            "city": "São Paulo",
            "state": "SP",
            "cep": "01310-100",
            "country": "BR",
            **changes,
        }

    def checkout_body(
        self, items: Sequence[tuple[str, int]], **quote_options: Any
    ) -> dict[str, Any]:
        return {
            "shipping_address": self.address(),
            "shipping_quote_id": self.quote(items, **quote_options),
            "payment_method_id": "pm_card_visa",
        }

    async def checkout(
        self, headers: dict[str, str], body: dict[str, Any], *, key: str | None = None
    ) -> httpx.Response:
        return await self.client.post(
            "/api/orders", json=body, headers={**headers, "Idempotency-Key": key or new_id()}
        )

    async def placed_order(
        self,
        headers: dict[str, str] | None = None,
        *,
        lines: Sequence[tuple[int, int]] = ((2500, 2),),
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """A PENDING order of a new user (or `headers`), for saga tests."""
        headers = headers or self.user()
        products = [(await self.product(price=price), quantity) for price, quantity in lines]
        await self.fill_cart(headers, *products)
        response = await self.checkout(
            headers, self.checkout_body([(p.sku, q) for p, q in products])
        )
        assert response.status_code == 202, response.text
        return response.json(), headers

    async def order(self, order_id: str, headers: dict[str, str]) -> dict[str, Any]:
        response = await self.client.get(f"/api/orders/{order_id}", headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def wait_status(
        self, order_id: str, headers: dict[str, str], status: str
    ) -> dict[str, Any]:
        async def reached() -> dict[str, Any] | None:
            order = await self.order(order_id, headers)
            return order if order["status"] == status else None

        result: dict[str, Any] = await eventually(reached, timeout=30)
        return result

    async def until(self, check: Callable[[], Awaitable[Any]]) -> Any:
        return await eventually(check, timeout=30)

    # ------------------------------------------------------------ the other contexts' saga steps

    async def confirmed_order(
        self,
    ) -> tuple[dict[str, Any], dict[str, str], Envelope[Event]]:
        """A CONFIRMED order of a new user (its stock reserved, its payment authorized): the
        order, the user's headers, and the StockReserved envelope that caused the rest."""
        order, user = await self.placed_order()
        reserved = await self.reserve(order)
        await self.authorize(order, reserved)
        await self.wait_status(order["id"], user, "CONFIRMED")
        return order, user, reserved

    async def reserve(self, order: dict[str, Any]) -> Envelope[Event]:
        placed = (await self.watcher.wait_for(order["id"], OrderPlaced))[0]
        return await self.bus.send(
            Envelope(
                data=StockReserved(
                    order_id=order["id"],
                    reservation_id=new_id(),
                    lines=[
                        StockLine(sku=line["sku"], quantity=line["quantity"])
                        for line in order["lines"]
                    ],
                    expires_at=datetime.now(UTC) + timedelta(minutes=15),
                ),
                correlation_id=placed.correlation_id,
                causation_id=placed.id,
            )
        )

    async def authorize(
        self,
        order: dict[str, Any],
        cause: Envelope[Event],
        *,
        amount: int | None = None,
        payment_id: str | None = None,
        flagged_for_review: bool = False,
    ) -> Envelope[Event]:
        return await self.bus.send(
            Envelope(
                data=PaymentAuthorized(
                    flagged_for_review=flagged_for_review,
                    order_id=order["id"],
                    payment_id=payment_id or new_id(),
                    provider_payment_id=f"pi_{new_id()[-12:]}",
                    amount=order["total"] if amount is None else amount,
                    currency=order["currency"],
                    authorized_at=datetime.now(UTC),
                ),
                correlation_id=cause.correlation_id,
                causation_id=cause.id,
            )
        )

    async def cancel_confirmed(
        self, order: dict[str, Any], headers: dict[str, str], *, reason: str | None = None
    ) -> dict[str, Any]:
        """Cancel a CONFIRMED order the way the stack does: the request, then shipping's
        ShipmentCancelled for a parcel that had not left. Returns the CANCELLED order."""
        response = await self.client.post(
            f"/api/orders/{order['id']}/cancel",
            headers=headers,
            json={"reason": reason} if reason else None,
        )
        assert response.status_code == 202, response.text
        requested = (await self.watcher.wait_for(order["id"], OrderCancellationRequested))[0]
        await self.follow(
            requested,
            ShipmentCancelled(
                shipment_id=new_id(),
                order_id=order["id"],
                user_id=order["user_id"],
                reason=requested.data.reason,
                cancelled_at=datetime.now(UTC),
            ),
        )
        return await self.wait_status(order["id"], headers, "CANCELLED")

    async def follow(self, cause: Envelope[Event], event: Event) -> Envelope[Event]:
        """Publish `event` as the next step of `cause`'s flow."""
        return await self.bus.send(
            Envelope(data=event, correlation_id=cause.correlation_id, causation_id=cause.id)
        )


def assert_problem(
    response: httpx.Response, status: int, slug: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == status
    if slug is not None:
        assert body["type"].endswith("/" + slug), body
    return body
