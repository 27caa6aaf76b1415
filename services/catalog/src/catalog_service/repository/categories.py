"""The `categories` collection: a tree with materialised paths and ancestor ids."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from shopkit.mongo_outbox import Database

Document = dict[str, Any]

CATEGORIES = "categories"


async def insert(db: Database, document: Document) -> None:
    await db[CATEGORIES].insert_one(document)


async def by_id(db: Database, category_id: str) -> Document | None:
    return await db[CATEGORIES].find_one({"_id": category_id})


async def by_slug(db: Database, slug: str) -> Document | None:
    return await db[CATEGORIES].find_one({"slug": slug})


async def by_ids(db: Database, ids: Iterable[str]) -> list[Document]:
    wanted = list(set(ids))
    if not wanted:
        return []
    return await db[CATEGORIES].find({"_id": {"$in": wanted}}).to_list()


async def all_categories(db: Database) -> list[Document]:
    return await db[CATEGORIES].find({}).sort("path", 1).to_list()


async def count(db: Database) -> int:
    return int(await db[CATEGORIES].count_documents({}))
