"""Security tests: the running stack (`make up`), through the gateway.

Every request of this suite reaches the gateway from a loopback address of its own (see
`loopback.py`), so the failed logins and throttled calls it provokes on purpose count against
that address only, never against 127.0.0.1, which every other local client shares.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from shop_cli.client import GOOD_CARD, Session, new_admin, new_customer
from shopkit.testing import eventually

from tests.e2e.waiting import not_yet

from .loopback import LoopbackRelay, fresh_loopback_ip

GATEWAY_HOST, GATEWAY_PORT = "127.0.0.1", 8000
TIMEOUT = 60


@pytest.fixture(scope="session")
async def relay() -> AsyncIterator[LoopbackRelay]:
    relay = LoopbackRelay(GATEWAY_HOST, GATEWAY_PORT, fresh_loopback_ip())
    await relay.start()
    yield relay
    await relay.stop()


def relay_client(relay: LoopbackRelay) -> httpx.AsyncClient:
    # Idle connections are dropped well before the server's keep-alive timeout (5 s): through
    # a relay, a connection the server just closed would otherwise be reused and fail.
    return httpx.AsyncClient(
        base_url=relay.url, timeout=30, limits=httpx.Limits(keepalive_expiry=1.0)
    )


@pytest.fixture(scope="session")
async def http(relay: LoopbackRelay) -> AsyncIterator[httpx.AsyncClient]:
    async with relay_client(relay) as client:
        yield client


@pytest.fixture(scope="session")
async def admin(http: httpx.AsyncClient) -> Session:
    return await new_admin(http)


@pytest.fixture
async def customer(http: httpx.AsyncClient) -> Session:
    return await new_customer(http)


@dataclass
class Product:
    sku: str
    id: str
    price: int


@pytest.fixture(scope="session")
async def product(admin: Session) -> Product:
    """A product of this run with plenty of stock."""
    sku = f"SEC-{secrets.token_hex(4).upper()}"
    created = await admin.post(
        "/api/products",
        {
            "sku": sku,
            "name": f"Security test item {sku}",
            "price": 2490,
            "currency": "BRL",
            "weight_grams": 300,
        },
    )
    await admin.set_stock(sku, 1000, "security tests")
    return Product(sku=sku, id=created["id"], price=created["price"])


async def confirmed_order(
    session: Session, product: Product
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Cart, quote, checkout with a good card; the CONFIRMED order and its shipment."""
    await eventually(
        lambda: not_yet(lambda: session.add_to_cart(product.sku, 1)), timeout=TIMEOUT, interval=0.5
    )
    quote = await eventually(
        lambda: not_yet(lambda: session.quote([{"sku": product.sku, "quantity": 1}])),
        timeout=TIMEOUT,
        interval=0.5,
    )
    cheapest = min(quote["options"], key=lambda option: option["price"])
    placed = await session.checkout(cheapest["quote_id"], GOOD_CARD)
    order: dict[str, Any] = await session.wait_for(placed["id"], {"CONFIRMED"}, TIMEOUT)
    shipment: dict[str, Any] = await eventually(
        lambda: not_yet(lambda: session.get(f"/api/shipping/orders/{order['id']}")),
        timeout=TIMEOUT,
    )
    return order, shipment
