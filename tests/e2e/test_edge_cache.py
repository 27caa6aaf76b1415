"""The gateway's edge copies of catalog pages never outlive a price change, however it was made."""

from __future__ import annotations

import httpx
from shop_cli.client import Session
from shopkit.settings import SERVICE_PORTS
from shopkit.testing import eventually

from .conftest import Catalog


async def _product(http: httpx.AsyncClient, sku: str) -> dict[str, object]:
    listed = await http.get("/api/products", params={"q": sku, "limit": 1})
    listed.raise_for_status()
    product: dict[str, object] = listed.json()["items"][0]
    return product


async def _served_from_memory(http: httpx.AsyncClient, page: str) -> httpx.Response:
    """The page once the gateway answers it from its cache. A purge caused by an earlier test's
    write may still be on its way over the channel and drop the first copy: ask again."""

    async def hit() -> httpx.Response | None:
        response = await http.get(page)
        return response if response.headers["x-cache"] == "hit" else None

    found: httpx.Response = await eventually(hit, timeout=5, interval=0.05)
    return found


async def test_a_price_change_through_the_gateway_is_seen_at_once(
    http: httpx.AsyncClient, admin: Session, catalog: Catalog
) -> None:
    product = await _product(http, catalog.skus[0])
    page = f"/api/products/{product['slug']}"
    first = await http.get(page)
    second = await _served_from_memory(http, page)
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
    await _served_from_memory(http, page)

    new_price = int(str(product["price"])) + 700
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{SERVICE_PORTS['catalog']}", headers=admin.headers
    ) as direct:
        changed = await direct.patch(f"/api/products/{product['id']}", json={"price": new_price})
        assert changed.status_code == 200
        try:

            async def repriced() -> bool:
                return bool((await http.get(page)).json()["price"] == new_price)

            await eventually(repriced, timeout=5, interval=0.01)
        finally:
            await direct.patch(f"/api/products/{product['id']}", json={"price": product["price"]})
