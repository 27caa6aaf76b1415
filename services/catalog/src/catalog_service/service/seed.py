"""`POST /api/products/seed`: the demo catalog, created once however often it is asked for."""

from __future__ import annotations

from typing import Any

from pymongo.errors import BulkWriteError

from catalog_service import seed_data
from catalog_service.errors import DuplicateSlugError
from catalog_service.repository import categories, products, stored_now
from catalog_service.resources import Catalog
from catalog_service.schemas import CategoryCreate, SeedResult
from catalog_service.service.categories import create_category
from catalog_service.service.products import derived_fields, new_document, slugify

_DUPLICATE_KEY = 11000


async def seed(catalog: Catalog) -> SeedResult:
    categories_created = 0
    by_slug: dict[str, dict[str, Any]] = {}
    for slug, name, parent in seed_data.CATEGORIES:  # parents come first
        found = await categories.by_slug(catalog.db, slug)
        if found is None:
            try:
                await create_category(
                    catalog,
                    data=CategoryCreate(
                        name=name, slug=slug, parent_id=by_slug[parent]["_id"] if parent else None
                    ),
                )
                categories_created += 1
            except DuplicateSlugError:
                pass  # a concurrent seed created it
            found = await categories.by_slug(catalog.db, slug)
        assert found is not None
        by_slug[slug] = found
    by_id = {c["_id"]: c for c in by_slug.values()}

    wanted = list(seed_data.products())
    existing = await products.existing_skus(catalog.db, (p.sku for p in wanted))
    now = stored_now()
    documents = []
    for item in wanted:
        if item.sku in existing:
            continue
        category = by_slug[item.category_slug]
        tree = sorted([*category["ancestors"], category["_id"]])
        fields: dict[str, Any] = {
            "sku": item.sku,
            "name": item.name,
            "slug": slugify(item.name),
            "description": item.description,
            "price": item.price,
            "currency": "BRL",
            "category_ids": [category["_id"]],
            "attributes": item.attributes,
            "images": [],
            "weight_grams": item.weight_grams,
            "is_active": True,
        }
        if await products.id_of_slug(catalog.db, fields["slug"]) is not None:
            fields["slug"] = slugify(f"{item.name} {item.sku}")
        derived = derived_fields(fields, tree=tree, category_names=[by_id[c]["name"] for c in tree])
        documents.append(new_document(fields, derived=derived, now=now))
    created = len(documents)
    if documents:
        try:
            await catalog.db[products.PRODUCTS].insert_many(documents, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != _DUPLICATE_KEY for e in errors):
                raise
            created -= len(errors)  # created by a concurrent seed in the meantime
        await catalog.changed()
    return SeedResult(
        categories_created=categories_created,
        products_created=created,
        categories_total=await categories.count(catalog.db),
        products_total=await products.total(catalog.db),
    )
