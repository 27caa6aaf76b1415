"""The gateway's edge copies of catalog pages never outlive a price change, however it was made."""

from __future__ import annotations

import asyncio
import time

import httpx
from shop_cli.client import Session
from shopkit.settings import SERVICE_PORTS

from .conftest import Catalog


async def _product(http: httpx.AsyncClient, sku: str) -> dict[str, object]:
    listed = await http.get("/api/products", params={"q": sku, "limit": 1})
    listed.raise_for_status()
    product: dict[str, object] = listed.json()["items"][0]
    return product


async def test_a_price_change_through_the_gateway_is_seen_at_once(
    http: httpx.AsyncClient, admin: Session, catalog: Catalog
) -> None:
    product = await _product(http, catalog.skus[0])
    page = f"/api/products/{product['slug']}"
    first = await http.get(page)
    second = await http.get(page)
    assert second.headers["x-cache"] == "hit"
    assert second.json() == first.json()
    assert "surrogate-control" not in second.headers

    new_price = int(str(product["price"])) + 500
    await admin.patch(f"/api/products/{product['id']}", {"price": new_price})
    try:
        fresh = await http.get(page)
        assert fresh.json()["price"] == new_price
        listed = await _product(http, catalog.skus[0])
        assert listed["price"] == new_price
    finally:
        await admin.patch(f"/api/products/{product['id']}", {"price": product["price"]})


async def test_a_change_that_bypasses_the_gateway_purges_it_through_the_channel(
    http: httpx.AsyncClient, admin: Session, catalog: Catalog
) -> None:
    """What another gateway replica sees: the write does not pass through this one."""
    product = await _product(http, catalog.skus[1])
    page = f"/api/products/{product['slug']}"
    await http.get(page)
    assert (await http.get(page)).headers["x-cache"] == "hit"

    new_price = int(str(product["price"])) + 700
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{SERVICE_PORTS['catalog']}", headers=admin.headers
    ) as direct:
        changed = await direct.patch(f"/api/products/{product['id']}", json={"price": new_price})
        assert changed.status_code == 200
        try:
            deadline = time.monotonic() + 5
            while (await http.get(page)).json()["price"] != new_price:
                assert time.monotonic() < deadline, "the gateway kept the old price"
                await asyncio.sleep(0.01)
        finally:
            await direct.patch(f"/api/products/{product['id']}", json={"price": product["price"]})
