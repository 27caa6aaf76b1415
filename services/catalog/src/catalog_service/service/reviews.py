"""Reviews: one per user and product, `verified_purchase` only after a delivery to that user."""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from contracts.ids import is_uuid7
from shopkit.erasure import AccountDeletedError
from shopkit.mongo_outbox import Database, LockTimeoutError, ensure_held
from shopkit.privacy import REMOVED
from shopkit.security import Principal

from catalog_service.errors import (
    DuplicateReviewError,
    InvalidCursorError,
    ProductBusyError,
)
from catalog_service.repository import products, reviews, stored_now
from catalog_service.resources import Catalog
from catalog_service.schemas import (
    CatalogExport,
    PurchasePublic,
    Rating,
    ReviewCreate,
    ReviewList,
    ReviewPublic,
)
from catalog_service.service.products import resolve_product
from contracts import new_id

Document = dict[str, Any]

log = logging.getLogger(__name__)


def to_public(doc: Document) -> ReviewPublic:
    return ReviewPublic(
        id=doc["_id"],
        product_id=doc["product_id"],
        user_id=doc["user_id"],
        rating=doc["rating"],
        title=doc.get("title"),
        text=doc["text"],
        verified_purchase=bool(doc.get("verified_purchase")),
        created_at=doc["created_at"],
    )


async def add_review(
    catalog: Catalog, *, id_or_slug: str, author: Principal, data: ReviewCreate
) -> ReviewPublic:
    """Store the author's review of the product; a deleted account's is refused.

    Both checks come after the insert because the consumers run at the same time (no
    transactions): a delivery recorded between a first read and the insert has verified the
    user's reviews already, without this one, and a deletion lists the user's reviews once.
    Written first and checked after, as purchase facts are (`record_purchases`)."""
    product = await resolve_product(catalog, id_or_slug=id_or_slug, viewer=None)
    received = await reviews.has_received(catalog.db, user_id=author.user_id, sku=product["sku"])
    doc: Document = {
        "_id": new_id(),
        "product_id": product["_id"],
        "user_id": author.user_id,
        "rating": data.rating,
        "title": data.title or None,
        "text": data.text,
        "verified_purchase": received,
        "created_at": stored_now(),
    }
    if not await reviews.insert(catalog.db, doc):
        raise DuplicateReviewError("you have already reviewed this product")
    if not received and await reviews.has_received(
        catalog.db, user_id=author.user_id, sku=product["sku"]
    ):
        # The delivery's `mark_verified` ran before this review existed.
        await reviews.mark_verified(
            catalog.db, user_id=author.user_id, product_ids=[product["_id"]]
        )
        doc["verified_purchase"] = True
    # Checked after this request's last write to the review: the server does not make an
    # update atomic against another, so a write of ours racing the deletion's detach could put
    # the author back. An account not erased yet here is recorded so later, and only then does
    # the deletion list the user's reviews: after all our writes.
    if await reviews.is_erased(catalog.db, author.user_id):
        await reviews.delete_unless_detached(catalog.db, doc["_id"], user_id=author.user_id)
        # Another review's recount may have counted this one meanwhile.
        await _refresh_or_owe(catalog, product_id=product["_id"])
        raise AccountDeletedError("this account has been deleted; it can no longer write reviews")
    await _refresh_or_owe(catalog, product_id=product["_id"])
    return to_public(doc)


async def _refresh_or_owe(catalog: Catalog, *, product_id: str) -> None:
    """Recount the product's rating now or, should the product be busy (an admin's edit, the
    relay), leave the recount owed to `settle_ratings`. The review is stored by then: a 503
    would make the client retry into "already reviewed", and the rating would wait for the
    next review."""
    try:
        await refresh_rating(catalog, product_id=product_id)
    except ProductBusyError:
        await reviews.owe_rating(
            catalog.db, mark_id=new_id(), product_id=product_id, at=stored_now()
        )
        log.info("product busy; its rating recount is owed", extra={"product_id": product_id})


async def refresh_rating(catalog: Catalog, *, product_id: str) -> None:
    """Recount the product's rating from its reviews (so a missed update heals on the next)."""
    try:
        async with catalog.locks.hold(products.PRODUCTS, product_id) as lease:
            count, total = await reviews.rating_of(catalog.db, product_id)
            average = round(total / count, 2) if count else 0.0
            ensure_held(lease)
            await products.update(
                catalog.db,
                product_id,
                {"$set": {"rating": {"count": count, "sum": total, "average": average}}},
            )
    except LockTimeoutError as exc:
        raise ProductBusyError("the product is being changed; its rating will follow") from exc
    await catalog.changed()


async def settle_ratings(catalog: Catalog, *, batch: int = 100) -> bool:
    """Recount the ratings owed (every round of a background job; one query when none is).
    True when more than one batch was owed.

    A mark goes only after a recount that started after it was read, so that recount counted
    the review behind it; a mark written meanwhile waits for the next round."""
    owed = await reviews.owed_ratings(catalog.db, limit=batch + 1)
    marks: dict[str, list[str]] = {}
    for mark in owed[:batch]:
        marks.setdefault(mark["product_id"], []).append(mark["_id"])
    for product_id, mark_ids in marks.items():
        try:
            await refresh_rating(catalog, product_id=product_id)
        except ProductBusyError:
            continue  # still busy: its marks stay for the next round
        await reviews.ratings_settled(catalog.db, mark_ids)
    return len(owed) > batch


async def forget_author(catalog: Catalog, *, user_id: str) -> int:
    """Detach a deleted account from its reviews and drop its purchase facts; returns how many
    reviews changed (none for a user who never wrote one, or the second time).

    Each review keeps its rating, date and `verified_purchase`, so the product's rating count
    and average do not move and need no recount. The title and text go: they are the user's
    own words, free text that may name them or others, and erasure under LGPD art. 18 / GDPR
    art. 17 covers content the person provided. The author id is replaced by a fresh random id
    per review rather than a shared placeholder: the reviews can no longer be tied to the
    account (orders keep its id as an accounting record), and one review per author and
    product (a unique index) still holds when several deleted authors reviewed one product.
    Reviews store no display name: the author id is all that identified the writer.
    """
    # The account is remembered as erased first: a review or a purchase fact written from now
    # on finds it so and goes (`add_review`, `record_purchases`); one written before is in the
    # list below or among the purchases deleted after it.
    await reviews.remember_erased(catalog.db, user_id, stored_now())
    detached = await _detach_reviews(catalog.db, user_id)
    # Who bought what only serves the verified badge of that user's future reviews: no more.
    await reviews.delete_purchases(catalog.db, user_id)
    return detached


async def _detach_reviews(db: Database, user_id: str) -> int:
    review_ids = await reviews.ids_by_author(db, user_id)
    for review_id in review_ids:
        await reviews.detach_author(
            db,
            review_id,
            user_id=user_id,
            changes={
                "user_id": new_id(),
                "title": None,
                "text": REMOVED,
                "author_removed_at": stored_now(),
            },
        )
    return len(review_ids)


async def verify_reviews(db: Database, *, user_id: str, product_ids: Iterable[str]) -> None:
    """Mark the user's reviews of these products as verified purchases (a delivery).

    Checked after the write, as `add_review` is: the server replaces a whole document to
    update it, so this write racing a deletion's detach could put the author and their words
    back. An account not erased yet here is recorded so before the deletion lists the
    reviews, which then sees this write; one erased already is detached again."""
    await reviews.mark_verified(db, user_id=user_id, product_ids=product_ids)
    if await reviews.is_erased(db, user_id):
        await _detach_reviews(db, user_id)


async def record_purchases(
    db: Database, *, kind: str, order_id: str, user_id: str, skus: Iterable[str], at: datetime
) -> None:
    """Remember that `user_id` bought (`confirmed`) or received (`delivered`) each sku, unless
    the account was deleted. Written first and checked after: a deletion running at the same
    time either sees these facts (and deletes them) or is seen here (and they are deleted)."""
    for sku in skus:
        await reviews.record_purchase(
            db, kind=kind, order_id=order_id, user_id=user_id, sku=sku, at=at
        )
    if await reviews.is_erased(db, user_id):
        await reviews.delete_purchases(db, user_id)


async def export(catalog: Catalog, *, principal: Principal) -> CatalogExport:
    """The caller's reviews and purchase facts; a user with none gets empty lists."""
    written = await reviews.by_author(catalog.db, principal.user_id)
    bought = await reviews.purchases_of(catalog.db, principal.user_id)
    return CatalogExport(
        user_id=principal.user_id,
        reviews=[to_public(doc) for doc in written],
        purchases=[
            PurchasePublic(kind=doc["kind"], order_id=doc["order_id"], sku=doc["sku"], at=doc["at"])
            for doc in bought
        ],
    )


async def list_reviews(
    catalog: Catalog, *, id_or_slug: str, cursor: str | None, limit: int
) -> ReviewList:
    product = await resolve_product(catalog, id_or_slug=id_or_slug, viewer=None)
    before = _decode(cursor) if cursor else None
    found = await reviews.page(catalog.db, product["_id"], before=before, limit=limit + 1)
    page = found[:limit]
    rating = product.get("rating") or {}
    count = int(rating.get("count", 0))
    return ReviewList(
        items=[to_public(doc) for doc in page],
        next_cursor=_encode(page[-1]["_id"]) if len(found) > limit else None,
        rating=Rating(count=count, average=rating.get("average") if count else None),
    )


def _encode(review_id: str) -> str:
    return base64.urlsafe_b64encode(review_id.encode()).decode()


def _decode(cursor: str) -> str:
    try:
        value = base64.b64decode(cursor, altchars=b"-_", validate=True).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidCursorError("cursor is malformed") from exc
    if not is_uuid7(value):
        raise InvalidCursorError("cursor is malformed")
    return value
