"""End-to-end tests: the running stack (`make up`), through the gateway only."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx
import pytest
from shop_cli.client import GOOD_CARD, Session, gateway_client, new_admin, new_customer
from shopkit.testing import eventually

from tests.e2e.waiting import not_yet

TIMEOUT = 60


@dataclass
class Catalog:
    """Products created for this test run, with known stock."""

    skus: list[str]
    scarce: str
    """A sku with exactly one unit."""
    prices: dict[str, int]


@pytest.fixture(scope="session")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client() as client:
        yield client


@pytest.fixture(scope="session")
async def admin(http: httpx.AsyncClient) -> Session:
    return await new_admin(http)


@pytest.fixture(scope="session")
async def catalog(admin: Session) -> Catalog:
    run = secrets.token_hex(3).upper()
    skus, prices = [], {}
    for i in range(6):
        sku = f"E2E-{run}-{i}"
        price = 1990 + 1000 * i
        await admin.post(
            "/api/products",
            {
                "sku": sku,
                "name": f"End-to-end item {run} {i}",
                "price": price,
                "currency": "BRL",
                "weight_grams": 300 + 100 * i,
                "attributes": {"brand": "E2E", "color": "blue"},
            },
        )
        skus.append(sku)
        prices[sku] = price
    for sku in skus[:-1]:
        await admin.set_stock(sku, 20, "e2e stock")
    await admin.set_stock(skus[-1], 1, "e2e last unit")
    return Catalog(skus=skus[:-1], scarce=skus[-1], prices=prices)


@pytest.fixture
async def customer(http: httpx.AsyncClient) -> Session:
    return await new_customer(http)


async def buy(
    customer: Session,
    lines: list[tuple[str, int]],
    card: str = GOOD_CARD,
    coupon: str | None = None,
) -> dict[str, Any]:
    """`Session.buy`, each step retried alone while orders or shipping has not yet projected
    the run's new products: retrying the whole purchase would add the lines to the cart twice."""
    for sku, quantity in lines:
        await eventually(
            partial(not_yet, partial(customer.add_to_cart, sku, quantity)),
            timeout=TIMEOUT,
            interval=0.5,
        )
    if coupon:
        await customer.apply_coupon(coupon)
    items = [{"sku": sku, "quantity": quantity} for sku, quantity in lines]
    quote = await eventually(
        partial(not_yet, partial(customer.quote, items)), timeout=TIMEOUT, interval=0.5
    )
    cheapest = min(quote["options"], key=lambda option: option["price"])
    order: dict[str, Any] = await customer.checkout(cheapest["quote_id"], card)
    return order
