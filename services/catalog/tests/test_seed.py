"""The demo catalog: realistic, large enough, idempotent, and announced like any product."""

from __future__ import annotations

import asyncio

from catalog_service import seed_data
from contracts.events.catalog import ProductCreated
from shopkit.testing import wait_for_events

from .conftest import running_catalog


async def test_seeding_is_idempotent_and_announces_every_product() -> None:
    async with running_catalog() as service:
        admin = service.admin()
        first, concurrent = await asyncio.gather(
            service.client.post("/api/products/seed", headers=admin),
            service.client.post("/api/products/seed", headers=admin),
        )
        assert first.status_code == concurrent.status_code == 200, first.text
        created = first.json()["products_created"] + concurrent.json()["products_created"]
        expected = len(list(seed_data.products()))
        assert created == expected >= 200
        again = (await service.client.post("/api/products/seed", headers=admin)).json()
        assert again == {
            "categories_created": 0,
            "products_created": 0,
            "categories_total": len(seed_data.CATEGORIES),
            "products_total": expected,
        }

        listed, cursor = [], None
        while True:
            params = {"limit": 100} | ({"cursor": cursor} if cursor else {})
            page = (await service.client.get("/api/products", params=params)).json()
            listed += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(listed) == expected
        assert {p["currency"] for p in listed} == {"BRL"}
        assert all(p["weight_grams"] > 0 and p["price"] > 0 and p["attributes"] for p in listed)
        assert len({c for p in listed for c in p["category_ids"]}) >= 15

        smartphones = (
            await service.client.get(
                "/api/products",
                params={
                    "category": "eletronicos",
                    "q": "samsung galaxy",
                    "attr.storage_gb": "256",
                },
            )
        ).json()["items"]
        assert smartphones
        assert all(
            "Samsung Galaxy" in p["name"] and p["attributes"]["storage_gb"] == 256
            for p in smartphones
        )

        skus = {p["sku"] for p in listed}
        announced = await wait_for_events(
            service.namespace,
            ProductCreated,
            where=lambda e: e.sku in skus,
            count=expected,
            within=120,
        )
        assert {e.sku for e in announced} == skus
        assert len(announced) == expected  # once each, though two seeds ran at once
        assert all(e.version == 1 and e.weight_grams > 0 for e in announced)
        customer = await service.client.post("/api/products/seed", headers=service.tokens.headers())
        assert customer.status_code == 403
