"""End-to-end tests: the running stack (`make up`), through the gateway only."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from shop_cli.client import Session, gateway_client, new_admin, new_customer


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
