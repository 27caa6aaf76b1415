"""Redis speeds reads up but is not needed to answer them."""

from __future__ import annotations

from catalog_service.repository import products, stored_now
from catalog_service.service.products import derived_fields, new_document

from .conftest import running_catalog


async def test_reads_are_served_from_the_database_when_redis_is_unreachable() -> None:
    # Nothing listens on port 1: every cache call fails at once.
    async with running_catalog(redis_url="redis://127.0.0.1:1/0") as service:
        fields = {
            "sku": "OUTAGE-1",
            "name": "Lanterna Tática",
            "slug": "lanterna-tatica",
            "description": "",
            "price": 5990,
            "currency": "BRL",
            "category_ids": [],
            "attributes": {"brand": "Nautika"},
            "images": [],
            "weight_grams": 250,
            "is_active": True,
        }
        doc = new_document(
            fields, derived=derived_fields(fields, tree=[], category_names=[]), now=stored_now()
        )
        await products.insert(service.db, doc)
        listed = await service.client.get("/api/products", params={"q": "lanterna"})
        assert listed.status_code == 200
        assert [p["sku"] for p in listed.json()["items"]] == ["OUTAGE-1"]
        page = await service.client.get("/api/products/lanterna-tatica")
        assert page.status_code == 200
        assert page.json()["price"] == 5990
