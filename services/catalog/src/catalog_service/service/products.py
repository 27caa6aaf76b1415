"""Product rules: creation, changes with their events, soft deletion, and reading one product.

A write changes the document and appends its events to the document's outbox in one update
(under the product's lock), bumps the document `version` once, and invalidates the cache
before returning. Every event of one write carries that version, the full `ProductUpdated`
snapshot first, so a projection that applies "newer versions only" misses nothing.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from contracts.events.catalog import (
    PriceChanged,
    ProductCreated,
    ProductDeactivated,
    ProductUpdated,
)
from contracts.ids import is_uuid7
from pymongo.errors import DuplicateKeyError
from shopkit.mongo_outbox import LockTimeoutError, ensure_held, outbox_update, with_outbox
from shopkit.security import Principal

from catalog_service import search
from catalog_service.errors import (
    DuplicateSkuError,
    DuplicateSlugError,
    ProductBusyError,
    ProductNotFoundError,
    UnknownCategoryError,
)
from catalog_service.repository import categories, products, stored_now
from catalog_service.resources import Catalog
from catalog_service.schemas import RESERVED_SLUGS, ProductCreate, ProductPublic, Rating
from contracts import Envelope, Event, new_id

Document = dict[str, Any]

SELLABLE_FIELDS = (
    "name",
    "slug",
    "description",
    "price",
    "currency",
    "category_ids",
    "attributes",
    "images",
    "weight_grams",
    "is_active",
)


def slugify(text: str) -> str:
    return search.slug(text) or "product"


def to_public(doc: Document) -> ProductPublic:
    rating = doc.get("rating") or {}
    count = int(rating.get("count", 0))
    return ProductPublic(
        id=doc["_id"],
        sku=doc["sku"],
        name=doc["name"],
        slug=doc["slug"],
        description=doc.get("description", ""),
        price=doc["price"],
        currency=doc["currency"],
        category_ids=list(doc.get("category_ids", [])),
        attributes=dict(doc.get("attributes", {})),
        images=list(doc.get("images", [])),
        weight_grams=doc["weight_grams"],
        is_active=doc["is_active"],
        rating=Rating(count=count, average=rating.get("average") if count else None),
        version=doc["version"],
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
    )


def _snapshot(doc: Document, now: datetime) -> dict[str, Any]:
    return {
        "product_id": doc["_id"],
        "sku": doc["sku"],
        "name": doc["name"],
        "slug": doc["slug"],
        "price": doc["price"],
        "currency": doc["currency"],
        "category_ids": list(doc.get("category_ids", [])),
        "is_active": doc["is_active"],
        "weight_grams": doc["weight_grams"],
        "version": doc["version"],
        "occurred_at": now,
    }


async def _category_context(
    catalog: Catalog, category_ids: list[str]
) -> tuple[list[str], list[str]]:
    """The product's categories with all their ancestors (for "category incl. descendants"
    filtering) and their names (for search); unknown ids are refused."""
    found = {c["_id"]: c for c in await categories.by_ids(catalog.db, category_ids)}
    missing = [c for c in category_ids if c not in found]
    if missing:
        raise UnknownCategoryError(f"unknown category ids: {', '.join(missing)}")
    tree = sorted({a for c in found.values() for a in [*c.get("ancestors", []), c["_id"]]})
    ancestors = await categories.by_ids(catalog.db, tree)
    return tree, [c["name"] for c in ancestors]


def derived_fields(fields: Document, *, tree: list[str], category_names: list[str]) -> Document:
    """Search terms and category tree, recomputed from the sellable fields."""
    attribute_text = [
        " ".join(str(v) for v in (value if isinstance(value, list) else [value]))
        for value in fields["attributes"].values()
    ]
    return {
        "category_tree": tree,
        "name_terms": search.words(fields["name"]),
        "search_terms": search.terms(
            [fields["name"], fields["description"], fields["sku"], *category_names, *attribute_text]
        ),
    }


async def _derived(catalog: Catalog, fields: Document) -> Document:
    tree, category_names = await _category_context(catalog, list(fields["category_ids"]))
    return derived_fields(fields, tree=tree, category_names=category_names)


def new_document(fields: Document, *, derived: Document, now: datetime) -> Document:
    """A product document at version 1, carrying its `ProductCreated` in its outbox."""
    doc: Document = {
        "_id": new_id(),
        **fields,
        **derived,
        "rating": {"count": 0, "sum": 0, "average": 0.0},
        "version": 1,
        "created_at": now,
        "updated_at": now,
        "deleted_at": None,
    }
    return with_outbox(doc, Envelope(data=ProductCreated(**_snapshot(doc, now))))


SLUG_ATTEMPTS = 5
"""Random tails tried for a name-derived slug whose name-and-sku form is taken too."""

SLUG_RACES = 3
"""Inserts tried for a name-derived slug that another request takes between look and insert."""


def suffixed_slug(base: str, suffix: str) -> str:
    """`base-suffix` within `MAX_SLUG` characters. The base is cut before the suffix is added,
    not the whole after: cut after, a long base lost the suffix (the taken slug again) or kept
    only its hyphen (a slug no route accepts)."""
    suffix = suffix[: search.MAX_SLUG].strip("-")
    head = base[: max(search.MAX_SLUG - len(suffix) - 1, 0)].rstrip("-")
    return f"{head}-{suffix}" if head else suffix


async def _free_slug(
    catalog: Catalog, slug: str, *, explicit: bool, sku: str, own_id: str | None
) -> str:
    """`slug` if no other product has it. Only a slug the client chose is refused when taken: a
    slug derived from the name gets the sku's slug appended instead, then a random tail (two
    skus may share a slug, "X.1" and "x-1"), since a 409 would leave the client nothing to
    change."""
    if await _slug_free(catalog, slug, own_id=own_id):
        return slug
    if explicit:
        raise DuplicateSlugError(f"slug {slug!r} is taken by another product")
    for suffix in [slugify(sku), *(secrets.token_hex(4) for _ in range(SLUG_ATTEMPTS))]:
        candidate = suffixed_slug(slug, suffix)
        if await _slug_free(catalog, candidate, own_id=own_id):
            return candidate
    raise DuplicateSlugError(f"no free slug found for {slug!r}")


async def _slug_free(catalog: Catalog, slug: str, *, own_id: str | None) -> bool:
    # A reserved word names a route: a product holding it could not be reached by slug.
    if slug in RESERVED_SLUGS:
        return False
    holder = await products.id_of_slug(catalog.db, slug)
    return holder is None or holder == own_id


async def create_product(catalog: Catalog, *, data: ProductCreate) -> ProductPublic:
    if await products.id_of_sku(catalog.db, data.sku) is not None:
        raise DuplicateSkuError(f"sku {data.sku!r} already exists")
    now = stored_now()
    fields = data.model_dump(mode="json", exclude={"slug"})
    derived = await _derived(catalog, fields)
    explicit = data.slug is not None
    for race in range(SLUG_RACES):
        fields["slug"] = await _free_slug(
            catalog,
            data.slug or slugify(data.name),
            explicit=explicit,
            sku=data.sku,
            own_id=None,
        )
        doc = new_document(fields, derived=derived, now=now)
        try:
            await products.insert(catalog.db, doc)
            break
        except DuplicateKeyError as exc:  # lost a race for the sku or the slug
            if await products.id_of_sku(catalog.db, data.sku) is not None:
                raise DuplicateSkuError(f"sku {data.sku!r} already exists") from exc
            # A slug derived from the name is ours to choose again: the one just lost is
            # taken now, so the next look finds another.
            if explicit or race == SLUG_RACES - 1:
                raise DuplicateSlugError(
                    f"slug {fields['slug']!r} is taken by another product"
                ) from exc
    await catalog.changed()
    return to_public(doc)


async def change_product(
    catalog: Catalog, *, product_id: str, changes: Document, deleting: bool = False
) -> ProductPublic:
    """Apply changed sellable fields (PUT, PATCH, DELETE) and announce them."""
    if not is_uuid7(product_id):
        raise ProductNotFoundError(f"no product {product_id!r}")
    try:
        async with catalog.locks.hold(products.PRODUCTS, product_id) as lease:
            current = await products.by_id(catalog.db, product_id, full=True)
            if current is None:
                raise ProductNotFoundError(f"no product {product_id!r}")
            if changes.get("slug") is None:
                changes = {k: v for k, v in changes.items() if k != "slug"}  # keeps its slug
            wanted = {**{k: current.get(k) for k in SELLABLE_FIELDS}, **changes}
            if "slug" in changes:
                wanted["slug"] = await _free_slug(
                    catalog, changes["slug"], explicit=True, sku=current["sku"], own_id=product_id
                )
            diff = {k: v for k, v in wanted.items() if current.get(k) != v}
            if not diff and not (deleting and current.get("deleted_at") is None):
                return to_public(current)
            now = stored_now()
            after = {**current, **wanted, "version": current["version"] + 1, "updated_at": now}
            sets: Document = {
                **diff,
                **await _derived(catalog, {**wanted, "sku": current["sku"]}),
                "version": after["version"],
                "updated_at": now,
            }
            if deleting:
                sets["deleted_at"] = after["deleted_at"] = now
            elif wanted["is_active"]:
                sets["deleted_at"] = after["deleted_at"] = None
            envelopes = [Envelope(data=e) for e in _events(current, after, now)]
            ensure_held(lease)
            try:
                await products.update(
                    catalog.db, product_id, outbox_update({"$set": sets}, current, *envelopes)
                )
            except DuplicateKeyError as exc:  # the slug was taken meanwhile
                raise DuplicateSlugError(f"slug {wanted['slug']!r} is taken") from exc
    except LockTimeoutError as exc:
        raise ProductBusyError("the product is being changed by another request") from exc
    await catalog.changed()
    return to_public(after)


def _events(before: Document, after: Document, now: datetime) -> list[Event]:
    events: list[Event] = [ProductUpdated(**_snapshot(after, now))]
    if after["price"] != before["price"] or after["currency"] != before["currency"]:
        events.append(
            PriceChanged(
                product_id=after["_id"],
                sku=after["sku"],
                old_price=before["price"],
                new_price=after["price"],
                currency=after["currency"],
                version=after["version"],
                occurred_at=now,
            )
        )
    if before["is_active"] and not after["is_active"]:
        events.append(
            ProductDeactivated(
                product_id=after["_id"],
                sku=after["sku"],
                version=after["version"],
                occurred_at=now,
            )
        )
    return events


async def delete_product(catalog: Catalog, *, product_id: str) -> None:
    """Soft delete: the product stays (orders refer to it) but is no longer for sale."""
    await change_product(
        catalog, product_id=product_id, changes={"is_active": False}, deleting=True
    )


async def get_product(catalog: Catalog, *, id_or_slug: str, viewer: Principal | None) -> bytes:
    """The product page as JSON, through the cache; inactive products only for admins."""
    admin = viewer is not None and viewer.is_admin
    cache_key = f"{'admin' if admin else 'public'}:{id_or_slug}"
    generation, cached = await catalog.cache.get("product", cache_key)
    if cached is not None:
        return cached
    doc = await resolve_product(catalog, id_or_slug=id_or_slug, viewer=viewer)
    body = to_public(doc).model_dump_json().encode()
    await catalog.cache.put(generation, "product", cache_key, body)
    return body


async def resolve_product(
    catalog: Catalog, *, id_or_slug: str, viewer: Principal | None
) -> Document:
    """The product document behind an id or slug that this viewer may see."""
    admin = viewer is not None and viewer.is_admin
    if is_uuid7(id_or_slug):
        doc = await products.by_id(catalog.db, id_or_slug)
    elif slugify(id_or_slug) == id_or_slug:
        doc = await products.by_slug(catalog.db, id_or_slug)
    else:
        doc = None
    if doc is None or not (doc["is_active"] or admin):
        raise ProductNotFoundError(f"no product {id_or_slug!r}")
    return doc
