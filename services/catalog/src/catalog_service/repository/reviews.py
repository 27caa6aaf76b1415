"""The `reviews` collection (one per user and product) and the purchase facts behind
`verified_purchase` (insert-only documents, so concurrent consumers never overwrite each other)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.errors import DuplicateKeyError
from shopkit.mongo_outbox import Database

Document = dict[str, Any]

REVIEWS = "reviews"
PURCHASES = "purchases"
ERASED = "erased_accounts"
"""The ids of deleted accounts: a purchase fact arriving after the deletion is not kept."""
RATINGS_OWED = "ratings_owed"
"""Products whose rating was not recounted after a review (the product was busy): one mark
per missed recount, inserted (never updated) so concurrent writers cannot lose one."""


async def insert(db: Database, document: Document) -> bool:
    """False when this user already reviewed this product (unique index)."""
    try:
        await db[REVIEWS].insert_one(document)
    except DuplicateKeyError:
        return False
    return True


async def page(db: Database, product_id: str, *, before: str | None, limit: int) -> list[Document]:
    query: Document = {"product_id": product_id}
    if before is not None:
        query["_id"] = {"$lt": before}
    return await db[REVIEWS].find(query).sort("_id", DESCENDING).limit(limit).to_list()


async def rating_of(db: Database, product_id: str) -> tuple[int, int]:
    """(count, sum of ratings) recomputed from the reviews themselves.

    Summed here rather than by `$group`: FerretDB 1.24 computes only the first accumulator of a
    `$group` stage and returns 0 for the others."""
    ratings = [
        int(doc["rating"])
        async for doc in db[REVIEWS].find({"product_id": product_id}, {"rating": 1})
    ]
    return len(ratings), sum(ratings)


async def owe_rating(db: Database, *, mark_id: str, product_id: str, at: datetime) -> None:
    await db[RATINGS_OWED].insert_one({"_id": mark_id, "product_id": product_id, "at": at})


async def owed_ratings(db: Database, *, limit: int) -> list[Document]:
    """The oldest marks of ratings still owed."""
    return await db[RATINGS_OWED].find().sort("_id", ASCENDING).limit(limit).to_list()


async def ratings_settled(db: Database, mark_ids: Iterable[str]) -> None:
    ids = list(mark_ids)
    if ids:
        await db[RATINGS_OWED].delete_many({"_id": {"$in": ids}})


async def mark_verified(db: Database, *, user_id: str, product_ids: Iterable[str]) -> None:
    ids = list(set(product_ids))
    if ids:
        await db[REVIEWS].update_many(
            {"user_id": user_id, "product_id": {"$in": ids}, "verified_purchase": False},
            {"$set": {"verified_purchase": True}},
        )


async def by_author(db: Database, user_id: str) -> list[Document]:
    """Every review the user wrote, oldest first."""
    return await db[REVIEWS].find({"user_id": user_id}).sort("_id", ASCENDING).to_list()


async def purchases_of(db: Database, user_id: str) -> list[Document]:
    """The user's purchase facts, oldest first."""
    found = await db[PURCHASES].find({"user_id": user_id}).to_list()
    return sorted(found, key=lambda doc: (doc["at"], doc["_id"]))


async def ids_by_author(db: Database, user_id: str) -> list[str]:
    return [doc["_id"] async for doc in db[REVIEWS].find({"user_id": user_id}, {"_id": 1})]


async def detach_author(db: Database, review_id: str, *, user_id: str, changes: Document) -> None:
    """Apply `changes` to the review if `user_id` still wrote it (a replay finds it done)."""
    await db[REVIEWS].update_one({"_id": review_id, "user_id": user_id}, {"$set": changes})


async def delete_unless_detached(db: Database, review_id: str, *, user_id: str) -> None:
    """Delete the review if `user_id` still wrote it (one detached meanwhile stays, anonymous)."""
    await db[REVIEWS].delete_one({"_id": review_id, "user_id": user_id})


async def delete_purchases(db: Database, user_id: str) -> None:
    await db[PURCHASES].delete_many({"user_id": user_id})


async def remember_erased(db: Database, user_id: str, at: datetime) -> None:
    with contextlib.suppress(DuplicateKeyError):
        await db[ERASED].insert_one({"_id": user_id, "at": at})


async def is_erased(db: Database, user_id: str) -> bool:
    return await db[ERASED].find_one({"_id": user_id}, {"_id": 1}) is not None


async def record_purchase(
    db: Database, *, kind: str, order_id: str, user_id: str, sku: str, at: datetime
) -> None:
    """Remember that `user_id` bought (`confirmed`) or received (`delivered`) `sku`; idempotent."""
    # A duplicate key means an earlier delivery of the same event recorded it already.
    with contextlib.suppress(DuplicateKeyError):
        await db[PURCHASES].insert_one(
            {
                "_id": f"{kind}:{order_id}:{sku}",
                "kind": kind,
                "order_id": order_id,
                "user_id": user_id,
                "sku": sku,
                "at": at,
            }
        )


async def has_received(db: Database, *, user_id: str, sku: str) -> bool:
    found = await db[PURCHASES].find_one(
        {"user_id": user_id, "sku": sku, "kind": "delivered"}, {"_id": 1}
    )
    return found is not None
