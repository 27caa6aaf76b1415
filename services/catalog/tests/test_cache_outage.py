"""Redis speeds reads up but is not needed to answer them."""

from __future__ import annotations

from typing import Any

from catalog_service.repository import products, stored_now
from catalog_service.repository.cache import Cache
from catalog_service.service.products import derived_fields, new_document
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from shopkit.testing import eventually

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


class _BlipDuringWrites:
    """The cache's Redis, failing every transaction (the invalidation a write sends) while
    `failing`; reads and cache fills go through."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self.failing = True

    def pipeline(self, **kwargs: Any) -> Any:
        if self.failing:
            raise RedisConnectionError("Connection reset by peer")
        return self._redis.pipeline(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._redis, name)


async def test_a_write_whose_invalidation_failed_is_never_hidden_by_a_cached_page() -> None:
    """Redis blipped only while a price change invalidated the cache: the old page stayed
    cached under the current generation and was served for the whole TTL. The invalidation is
    now owed, the cache read past until it goes through, and then sent."""
    async with running_catalog() as service:
        created = await service.client.post(
            "/api/products",
            json={"sku": "BLIP-1", "name": "Garrafa Térmica", "price": 8990, "weight_grams": 400},
            headers=service.admin(),
        )
        assert created.status_code == 201, created.text
        product = created.json()
        cache: Cache = service.app.state.catalog.cache

        async def settled() -> bool:
            return not cache.owed

        await eventually(settled)  # the invalidation owed since startup went through
        page = f"/api/products/{product['slug']}"
        assert (await service.client.get(page)).json()["price"] == 8990  # now cached
        generation = await cache.redis.get(f"{service.settings.cache_prefix}cache:generation")

        blip = _BlipDuringWrites(cache.redis)
        cache.redis = blip  # type: ignore[assignment]
        changed = await service.client.patch(
            f"/api/products/{product['id']}", json={"price": 9990}, headers=service.admin()
        )
        assert changed.status_code == 200
        assert cache.owed
        # Redis answers reads again at once; the page cached before the change is not served.
        for _ in range(3):
            assert (await service.client.get(page)).json()["price"] == 9990

        blip.failing = False
        await eventually(settled)
        bumped = await blip.get(f"{service.settings.cache_prefix}cache:generation")
        assert int(bumped) > int(generation)  # every replica now drops what it had cached
        assert (await service.client.get(page)).json()["price"] == 9990
