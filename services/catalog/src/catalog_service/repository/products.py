"""The `products` collection.

Writes that change an existing product run under its document lock (see `shopkit.mongo_outbox`:
the local MongoDB-wire server does not make an update atomic against a concurrent one).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pymongo import ASCENDING, DESCENDING
from shopkit.mongo_outbox import OUTBOX_FIELD, PENDING_FIELD, PENDING_SINCE_FIELD, Database

Document = dict[str, Any]

PRODUCTS = "products"

PUBLIC_PROJECTION = {
    OUTBOX_FIELD: 0,
    PENDING_FIELD: 0,
    PENDING_SINCE_FIELD: 0,
    "search_terms": 0,
}
"""What a reader needs: everything but the pending events and the search index."""

Sort = Sequence[tuple[str, int]]
NEWEST: Sort = [("_id", DESCENDING)]
PRICE_ASC: Sort = [("price", ASCENDING), ("_id", ASCENDING)]
PRICE_DESC: Sort = [("price", DESCENDING), ("_id", ASCENDING)]
RATING: Sort = [("rating.average", DESCENDING), ("_id", ASCENDING)]


async def insert(db: Database, document: Document) -> None:
    await db[PRODUCTS].insert_one(document)


async def by_id(db: Database, product_id: str, *, full: bool = False) -> Document | None:
    return await db[PRODUCTS].find_one({"_id": product_id}, None if full else PUBLIC_PROJECTION)


async def by_slug(db: Database, slug: str) -> Document | None:
    return await db[PRODUCTS].find_one({"slug": slug}, PUBLIC_PROJECTION)


async def id_of_sku(db: Database, sku: str) -> str | None:
    doc = await db[PRODUCTS].find_one({"sku": sku}, {"_id": 1})
    return None if doc is None else str(doc["_id"])


async def id_of_slug(db: Database, slug: str) -> str | None:
    doc = await db[PRODUCTS].find_one({"slug": slug}, {"_id": 1})
    return None if doc is None else str(doc["_id"])


async def existing_skus(db: Database, skus: Iterable[str]) -> set[str]:
    wanted = list(set(skus))
    if not wanted:
        return set()
    return {doc["sku"] async for doc in db[PRODUCTS].find({"sku": {"$in": wanted}}, {"sku": 1})}


async def by_ids(db: Database, ids: Sequence[str]) -> list[Document]:
    if not ids:
        return []
    return await db[PRODUCTS].find({"_id": {"$in": list(ids)}}, PUBLIC_PROJECTION).to_list()


async def ids_of_skus(db: Database, skus: Iterable[str]) -> list[str]:
    wanted = list(set(skus))
    if not wanted:
        return []
    return [str(d["_id"]) async for d in db[PRODUCTS].find({"sku": {"$in": wanted}}, {"_id": 1})]


async def update(db: Database, product_id: str, update: Mapping[str, Any]) -> None:
    """Apply an update to one product (the caller holds its document lock)."""
    await db[PRODUCTS].update_one({"_id": product_id}, dict(update))


async def page(db: Database, query: Document, sort: Sort, limit: int) -> list[Document]:
    cursor = db[PRODUCTS].find(query, PUBLIC_PROJECTION).sort(list(sort)).limit(limit)
    return await cursor.to_list()


async def all_matching(db: Database, query: Document) -> list[Document]:
    return await db[PRODUCTS].find(query, PUBLIC_PROJECTION).to_list()


async def count(db: Database, query: Document) -> int:
    return int(await db[PRODUCTS].count_documents(query))


async def total(db: Database) -> int:
    return int(await db[PRODUCTS].count_documents({}))
