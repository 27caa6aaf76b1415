"""Products, categories, reviews and purchase facts; leases and inbox of the document outbox.

FerretDB 1.x (the local MongoDB-wire server) has no text or partial indexes, so search uses an
indexed array of normalised terms (`search_terms`) instead of a `$text` index.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from shopkit.mongo_outbox import create_indexes

revision = "m0002"

FILTERABLE_ATTRIBUTES = (
    "brand",
    "color",
    "size",
    "material",
    "gender",
    "storage_gb",
    "ram_gb",
    "screen_inches",
    "voltage",
    "connectivity",
    "author",
    "publisher",
    "language",
    "age_range",
    "pet",
    "volume_ml",
    "sport",
)


async def upgrade(db: AsyncDatabase[dict[str, Any]]) -> None:
    products = db.products
    await products.create_index([("sku", ASCENDING)], unique=True)
    await products.create_index([("slug", ASCENDING)], unique=True)
    await products.create_index([("search_terms", ASCENDING)])
    await products.create_index([("category_tree", ASCENDING)])
    await products.create_index(
        [("is_active", ASCENDING), ("price", ASCENDING), ("_id", ASCENDING)]
    )
    await products.create_index([("rating.average", DESCENDING), ("_id", ASCENDING)])
    await products.create_index([("outbox_pending", ASCENDING), ("outbox_since", ASCENDING)])
    for key in FILTERABLE_ATTRIBUTES:
        await products.create_index([(f"attributes.{key}", ASCENDING)])

    await db.categories.create_index([("slug", ASCENDING)], unique=True)
    await db.categories.create_index([("path", ASCENDING)])

    await db.reviews.create_index([("product_id", ASCENDING), ("user_id", ASCENDING)], unique=True)
    await db.reviews.create_index([("product_id", ASCENDING), ("_id", DESCENDING)])
    await db.purchases.create_index(
        [("user_id", ASCENDING), ("sku", ASCENDING), ("kind", ASCENDING)]
    )

    await create_indexes(db)
