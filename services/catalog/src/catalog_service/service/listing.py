"""Product listings: search, filters, sorts and keyset pagination, through the cache.

Pages are cut by keyset (the last item's sort key and id, carried in an opaque cursor), never by
offset: inserting products while a client pages through never repeats or skips an existing one.
Relevance is scored in the service (the server has no text score, see `search`), over the
products matching every query term; it depends only on the product's own text, so it is as
stable a key as a price.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from contracts.ids import is_uuid7
from shopkit.security import Principal

from catalog_service import search
from catalog_service.errors import InvalidCursorError, InvalidFilterError
from catalog_service.repository import categories, products
from catalog_service.resources import Catalog
from catalog_service.schemas import ProductList
from catalog_service.service.products import to_public

Document = dict[str, Any]
SortName = Literal["relevance", "newest", "price_asc", "price_desc", "rating"]
SORTS: tuple[SortName, ...] = ("relevance", "newest", "price_asc", "price_desc", "rating")

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
"""Attribute keys `attr.<key>=value` can filter on: indexed on MongoDB and DocumentDB (on
FerretDB 1.x, which never uses such an index, migration `m0005` drops them)."""


@dataclass(frozen=True)
class ListQuery:
    q: str | None = None
    category: str | None = None
    min_price: int | None = None
    max_price: int | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    sort: SortName | None = None
    limit: int = 20
    cursor: str | None = None

    def fingerprint(self, admin: bool) -> str:
        """Identifies what is listed (not which page), so a cursor cannot jump listings."""
        what = {k: v for k, v in asdict(self).items() if k not in ("cursor", "limit")}
        what["admin"] = admin
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]

    def cache_key(self, admin: bool) -> str:
        return hashlib.sha256(
            json.dumps({**asdict(self), "admin": admin}, sort_keys=True).encode()
        ).hexdigest()


# Numbers as attributes hold them: an integer BSON can encode (8 bytes; pymongo refused a
# longer one with a 500) and a plain decimal (float() also reads "nan" and "inf", which the
# database refuses).
_INTEGER = re.compile(r"-?[0-9]{1,18}")
_DECIMAL = re.compile(r"-?[0-9]{1,15}\.[0-9]{1,15}")


def _attribute_values(raw: str) -> list[Any]:
    """A query-string value matches the text or the number or boolean it spells."""
    values: list[Any] = [raw]
    if _INTEGER.fullmatch(raw):
        values.append(int(raw))
    elif _DECIMAL.fullmatch(raw):
        values.append(float(raw))
    if raw in ("true", "false"):
        values.append(raw == "true")
    return values


async def _base_filter(
    catalog: Catalog, query: ListQuery, admin: bool
) -> tuple[Document, list[str]]:
    conditions: list[Document] = []
    if not admin:
        conditions.append({"is_active": True})
    if query.category is not None:
        found = (
            await categories.by_id(catalog.db, query.category)
            if is_uuid7(query.category)
            else await categories.by_slug(catalog.db, query.category)
        )
        if found is None:
            raise InvalidFilterError(f"unknown category {query.category!r}")
        conditions.append({"category_tree": found["_id"]})
    if (
        query.min_price is not None
        and query.max_price is not None
        and query.min_price > query.max_price
    ):
        raise InvalidFilterError("min_price is above max_price")
    price: Document = {}
    if query.min_price is not None:
        price["$gte"] = query.min_price
    if query.max_price is not None:
        price["$lte"] = query.max_price
    if price:
        conditions.append({"price": price})
    for key, raw in sorted(query.attributes.items()):
        if key not in FILTERABLE_ATTRIBUTES:
            raise InvalidFilterError(
                f"attribute {key!r} cannot be filtered on; use one of: "
                + ", ".join(FILTERABLE_ATTRIBUTES)
            )
        conditions.append({f"attributes.{key}": {"$in": _attribute_values(raw)}})
    wanted = search.query_terms(query.q or "")
    if wanted:
        conditions.append({"search_terms": {"$all": wanted}})
    if not conditions:
        return {}, wanted
    return (conditions[0] if len(conditions) == 1 else {"$and": conditions}), wanted


def _encode_cursor(payload: Document) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


def _decode_cursor(cursor: str, sort: SortName, fingerprint: str) -> Document:
    try:
        payload = json.loads(base64.b64decode(cursor, altchars=b"-_", validate=True))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidCursorError("cursor is malformed") from exc
    if (
        not isinstance(payload, dict)
        or payload.get("s") != sort
        or payload.get("f") != fingerprint
        # Only what this listing issues reaches the query: a product id, and a sort key that
        # is a finite number (JSON as Python reads it also has NaN, which the store refuses,
        # and strings may hold lone surrogates, which no driver can encode).
        or not isinstance(payload.get("id"), str)
        or not is_uuid7(payload["id"])
        or not _is_sort_key(payload.get("k"))
    ):
        raise InvalidCursorError("cursor belongs to another listing (query, filters or sort)")
    return payload


def _is_sort_key(key: object) -> bool:
    if key is None:
        return True
    if isinstance(key, bool) or not isinstance(key, (int, float)):
        return False
    return math.isfinite(key) and abs(key) <= 2**53


_KEYSETS: dict[SortName, tuple[products.Sort, str | None, str]] = {
    # sort -> (order, key field, comparison that comes after the cursor's key)
    "newest": (products.NEWEST, None, "$lt"),
    "price_asc": (products.PRICE_ASC, "price", "$gt"),
    "price_desc": (products.PRICE_DESC, "price", "$lt"),
    "rating": (products.RATING, "rating.average", "$lt"),
}


def _after(sort: SortName, cursor: Document) -> Document:
    _, key, comparison = _KEYSETS[sort]
    if key is None:
        return {"_id": {comparison: cursor["id"]}}
    return {
        "$or": [
            {key: {comparison: cursor["k"]}},
            {key: cursor["k"], "_id": {"$gt": cursor["id"]}},
        ]
    }


def _key_of(sort: SortName, doc: Document) -> int | float | None:
    if sort in {"price_asc", "price_desc"}:
        return int(doc["price"])
    if sort == "rating":
        return float((doc.get("rating") or {}).get("average", 0.0))
    return None


async def list_products(catalog: Catalog, *, query: ListQuery, viewer: Principal | None) -> bytes:
    admin = viewer is not None and viewer.is_admin
    cache_key = query.cache_key(admin)
    generation, cached = await catalog.cache.get("list", cache_key)
    if cached is not None:
        return cached
    base, wanted = await _base_filter(catalog, query, admin)
    sort: SortName = query.sort or ("relevance" if wanted else "newest")
    if sort == "relevance" and not wanted:
        sort = "newest"  # nothing to be relevant to
    fingerprint = query.fingerprint(admin)
    cursor = _decode_cursor(query.cursor, sort, fingerprint) if query.cursor else None

    if sort == "relevance":
        items, has_more, total = await _relevance_page(catalog, base, wanted, query, cursor)
    else:
        order, _, _ = _KEYSETS[sort]
        condition = (
            base
            if cursor is None
            else ({"$and": [base, _after(sort, cursor)]} if base else _after(sort, cursor))
        )
        found = await products.page(catalog.db, condition, order, query.limit + 1)
        items, has_more = found[: query.limit], len(found) > query.limit
        total = await products.count(catalog.db, base) if cursor is None else None
    next_cursor = None
    if has_more and items:
        last = items[-1]
        key = last.get("_score") if sort == "relevance" else _key_of(sort, last)
        next_cursor = _encode_cursor({"s": sort, "f": fingerprint, "k": key, "id": last["_id"]})
    body = (
        ProductList(items=[to_public(doc) for doc in items], next_cursor=next_cursor, total=total)
        .model_dump_json()
        .encode()
    )
    await catalog.cache.put(generation, "list", cache_key, body)
    return body


async def _relevance_page(
    catalog: Catalog, base: Document, wanted: list[str], query: ListQuery, cursor: Document | None
) -> tuple[list[Document], bool, int | None]:
    phrase = " ".join(search.words(query.q or ""))
    scored = []
    for doc in await products.all_matching(catalog.db, base):
        doc["_score"] = search.score(list(doc.get("name_terms", [])), wanted, phrase)
        scored.append(doc)
    scored.sort(key=lambda d: (-d["_score"], d["_id"]))
    if cursor is not None:
        scored = [
            d for d in scored if (-d["_score"], d["_id"]) > (-(cursor["k"] or 0), cursor["id"])
        ]
        total = None
    else:
        total = len(scored)
    return scored[: query.limit], len(scored) > query.limit, total
