"""Trending products: the most units in recently confirmed orders."""

from __future__ import annotations

from datetime import datetime, timedelta

from catalog_service.repository import products
from catalog_service.resources import Catalog
from catalog_service.schemas import TrendingList, TrendingProduct
from catalog_service.service.products import to_public

TRENDING_CACHE_SECONDS = 5


def day_of(moment: datetime) -> str:
    return moment.strftime("%Y%m%d")


async def trending(catalog: Catalog, *, now: datetime) -> bytes:
    generation, cached = await catalog.cache.get("trending", "top")
    if cached is not None:
        return cached
    window = catalog.settings.trending_window_days
    days = [day_of(now - timedelta(days=n)) for n in range(window)]
    # Ask for a few more than shown: some may have been deactivated since they sold.
    ranked = await catalog.trending.top(days=days, size=catalog.settings.trending_size * 2)
    docs = {d["_id"]: d for d in await products.by_ids(catalog.db, [pid for pid, _ in ranked])}
    items = [
        TrendingProduct(product=to_public(docs[pid]), units=units)
        for pid, units in ranked
        if pid in docs and docs[pid]["is_active"]
    ][: catalog.settings.trending_size]
    body = TrendingList(items=items, window_days=window).model_dump_json().encode()
    await catalog.cache.put(generation, "trending", "top", body, ttl=TRENDING_CACHE_SECONDS)
    return body
