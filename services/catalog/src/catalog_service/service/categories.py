"""The category tree: created by admins, read by everyone (cached)."""

from __future__ import annotations

from typing import Any

from contracts.ids import is_uuid7
from pymongo.errors import DuplicateKeyError

from catalog_service import search
from catalog_service.errors import DuplicateSlugError, UnknownCategoryError
from catalog_service.repository import categories, stored_now
from catalog_service.resources import Catalog
from catalog_service.schemas import CategoryCreate, CategoryNode, CategoryPublic, CategoryTree
from contracts import new_id

Document = dict[str, Any]


def to_public(doc: Document) -> CategoryPublic:
    return CategoryPublic(
        id=doc["_id"],
        name=doc["name"],
        slug=doc["slug"],
        parent_id=doc.get("parent_id"),
        path=doc["path"],
    )


async def create_category(catalog: Catalog, *, data: CategoryCreate) -> CategoryPublic:
    parent: Document | None = None
    if data.parent_id is not None:
        parent = (
            await categories.by_id(catalog.db, data.parent_id) if is_uuid7(data.parent_id) else None
        )
        if parent is None:
            raise UnknownCategoryError(f"parent category {data.parent_id!r} does not exist")
    slug = data.slug or search.slug(data.name) or "category"
    if await categories.by_slug(catalog.db, slug) is not None:
        raise DuplicateSlugError(f"category slug {slug!r} is taken")
    doc: Document = {
        "_id": new_id(),
        "name": data.name,
        "slug": slug,
        "parent_id": parent["_id"] if parent else None,
        "ancestors": [*parent["ancestors"], parent["_id"]] if parent else [],
        "path": f"{parent['path'] if parent else ''}/{slug}",
        "created_at": stored_now(),
    }
    try:
        await categories.insert(catalog.db, doc)
    except DuplicateKeyError as exc:
        raise DuplicateSlugError(f"category slug {slug!r} is taken") from exc
    await catalog.changed()
    return to_public(doc)


async def category_tree(catalog: Catalog) -> bytes:
    generation, cached = await catalog.cache.get("categories", "tree")
    if cached is not None:
        return cached
    nodes: dict[str, CategoryNode] = {}
    roots: list[CategoryNode] = []
    for doc in await categories.all_categories(catalog.db):  # sorted by path: parents first
        node = CategoryNode(**to_public(doc).model_dump())
        nodes[node.id] = node
        parent = nodes.get(node.parent_id) if node.parent_id else None
        (parent.children if parent else roots).append(node)
    body = CategoryTree(items=roots).model_dump_json().encode()
    await catalog.cache.put(generation, "categories", "tree", body)
    return body
