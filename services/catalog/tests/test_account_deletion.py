"""A deleted account (`UserDeletionRequested` on users.events): its reviews keep their ratings
(so the products' rating count and average do not move) but lose their author and words; its
purchase facts go; a redelivery or a re-emission changes nothing; other authors are untouched."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from catalog_service.repository import reviews as stored_reviews
from contracts.events.users import UserDeletionRequested
from contracts.types import utc_now
from shopkit.testing import eventually, publish

from contracts import Envelope, Event, new_id

from .conftest import Running
from .factories import create_product
from .test_reviews_and_trending import confirmed, delivered, handled, review

WORDS = "A Maria Silva da Rua Augusta 12 recomenda"


def _deletion(user_id: str) -> Envelope[Event]:
    return Envelope(data=UserDeletionRequested(user_id=user_id, requested_at=utc_now()))


async def _reviews(catalog: Running, product: dict[str, Any]) -> dict[str, dict[str, Any]]:
    listed = (await catalog.client.get(f"/api/products/{product['id']}/reviews")).json()
    return {r["id"]: r for r in listed["items"]}


async def _ratings(catalog: Running, *products: dict[str, Any]) -> list[Any]:
    found = []
    for product in products:
        page = (await catalog.client.get(f"/api/products/{product['id']}")).json()
        listed = (await catalog.client.get(f"/api/products/{product['id']}/reviews")).json()
        found.append((page["rating"], listed["rating"]))
    return found


async def _purchases(catalog: Running, user_id: str) -> int:
    count: int = await catalog.db["purchases"].count_documents({"user_id": user_id})
    return count


async def _write(catalog: Running, product: dict[str, Any], user_id: str, rating: int) -> str:
    response = await catalog.client.post(
        f"/api/products/{product['id']}/reviews",
        json={"rating": rating, "title": "Maria aprova", "text": WORDS},
        headers=catalog.tokens.headers(user_id),
    )
    assert response.status_code == 201, response.text
    review_id: str = response.json()["id"]
    return review_id


async def test_deletion_detaches_reviews_and_keeps_ratings(catalog: Running) -> None:
    first, second = await create_product(catalog), await create_product(catalog)
    gone, kept = new_id(), new_id()
    gone_reviews = [await _write(catalog, first, gone, 5), await _write(catalog, second, gone, 1)]
    kept_review = await _write(catalog, first, kept, 2)
    assert (await review(catalog, second, kept, 4)).status_code == 201
    await publish(catalog.namespace, confirmed(gone, [(first, 1)]), confirmed(kept, [(second, 1)]))

    async def purchases_recorded() -> bool:
        return await _purchases(catalog, gone) == 1 and await _purchases(catalog, kept) == 1

    await eventually(purchases_recorded, timeout=60)
    ratings = await _ratings(catalog, first, second)
    assert ratings == [
        ({"count": 2, "average": 3.5}, {"count": 2, "average": 3.5}),
        ({"count": 2, "average": 2.5}, {"count": 2, "average": 2.5}),
    ]
    before = {**await _reviews(catalog, first), **await _reviews(catalog, second)}

    deletion = _deletion(gone)
    await publish(catalog.namespace, deletion)
    await handled(catalog, deletion)

    after = {**await _reviews(catalog, first), **await _reviews(catalog, second)}
    assert after.keys() == before.keys()
    for review_id in gone_reviews:
        was, now = before[review_id], after[review_id]
        assert was["user_id"] == gone and was["text"] == WORDS
        # The words and the author go; rating, date and verification stay.
        assert now["text"] == "[removed]"
        assert now["title"] is None
        assert now["user_id"] != gone
        for field in ("rating", "product_id", "verified_purchase", "created_at"):
            assert now[field] == was[field], field
    # Each review got its own pseudonym: nothing ties the two reviews together any more.
    assert after[gone_reviews[0]]["user_id"] != after[gone_reviews[1]]["user_id"]
    assert await catalog.db["reviews"].count_documents({"user_id": gone}) == 0
    # The products' rating count and average did not move.
    assert await _ratings(catalog, first, second) == ratings
    # Who bought what goes with the account.
    assert await _purchases(catalog, gone) == 0
    # Another author's reviews and purchases are untouched.
    assert after[kept_review] == before[kept_review]
    assert all(r == before[i] for i, r in after.items() if r["user_id"] == kept)
    assert await _purchases(catalog, kept) == 1


async def test_a_second_deletion_changes_nothing(catalog: Running) -> None:
    product = await create_product(catalog)
    gone = new_id()
    await _write(catalog, product, gone, 4)
    await _write(catalog, product, new_id(), 1)
    first = _deletion(gone)
    await publish(catalog.namespace, first)
    await handled(catalog, first)
    anonymised = await _reviews(catalog, product)
    ratings = await _ratings(catalog, product)

    # The same event again (the inbox drops it), then the request emitted again under a new
    # id (the handler runs: the reviews are not detached a second time, under new ids).
    again = _deletion(gone)
    await publish(catalog.namespace, first, again)
    await handled(catalog, again)

    assert await _reviews(catalog, product) == anonymised
    assert await _ratings(catalog, product) == ratings == [({"count": 2, "average": 2.5},) * 2]


async def test_an_unknown_user_is_a_no_op(catalog: Running) -> None:
    product = await create_product(catalog)
    author = new_id()
    await _write(catalog, product, author, 3)
    before, ratings = await _reviews(catalog, product), await _ratings(catalog, product)

    stranger = _deletion(new_id())
    await publish(catalog.namespace, stranger)
    await handled(catalog, stranger)

    assert await _reviews(catalog, product) == before
    assert [r["user_id"] for r in before.values()] == [author]
    assert await _ratings(catalog, product) == ratings


async def test_a_purchase_reported_after_the_deletion_is_not_kept(catalog: Running) -> None:
    """The deletion and the sales run in separate consumers, on separate topics: a parcel
    delivered after the account was deleted recorded who bought what again, and kept it for
    good."""
    product = await create_product(catalog)
    gone = new_id()
    order = confirmed(gone, [(product, 1)])
    deletion = _deletion(gone)
    await publish(catalog.namespace, deletion)
    await handled(catalog, deletion)

    # Delivered only: the order's confirmation would also count in the shared trending
    # ranking other tests read. Both events record purchases through `record_purchases`.
    late = Envelope(data=delivered(order))
    await publish(catalog.namespace, late)
    await handled(catalog, late)
    assert await _purchases(catalog, gone) == 0


async def _left_by(catalog: Running, user_id: str, words: str) -> list[dict[str, Any]]:
    """Reviews that still name the user or hold their words."""
    query = {"$or": [{"user_id": user_id}, {"text": words}, {"title": words}]}
    found: list[dict[str, Any]] = await catalog.db["reviews"].find(query).to_list()
    return found


def _assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/account-deleted")


async def test_a_review_written_after_the_deletion_is_not_kept(catalog: Running) -> None:
    """Auth denies the account's tokens in its own consumer: the catalog may handle the
    deletion first and still accept a token that was valid a moment ago."""
    product = await create_product(catalog)
    gone = new_id()
    deletion = _deletion(gone)
    await publish(catalog.namespace, deletion)
    await handled(catalog, deletion)

    words = f"{WORDS} {gone}"
    late = await catalog.client.post(
        f"/api/products/{product['id']}/reviews",
        json={"rating": 1, "title": words, "text": words},
        headers=catalog.tokens.headers(gone),
    )
    assert await _left_by(catalog, gone, words) == []
    _assert_refused(late)
    assert await _ratings(catalog, product) == [({"count": 0, "average": None},) * 2]


async def test_a_review_landing_while_the_deletion_runs_is_not_kept(
    catalog: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A review POST in flight lands just after the deletion listed the user's reviews (and
    is answered before the deletion goes on)."""
    product = await create_product(catalog)
    gone = new_id()
    await _write(catalog, product, gone, 5)
    words = f"{WORDS} {gone}"
    listed = stored_reviews.ids_by_author
    landed: list[httpx.Response] = []

    async def a_review_lands_after_the_listing(db: Any, user_id: str) -> list[str]:
        found = await listed(db, user_id)
        if user_id == gone and not landed:
            landed.append(
                await catalog.client.post(
                    f"/api/products/{(await create_product(catalog))['id']}/reviews",
                    json={"rating": 2, "title": words, "text": words},
                    headers=catalog.tokens.headers(gone),
                )
            )
        return found

    monkeypatch.setattr(stored_reviews, "ids_by_author", a_review_lands_after_the_listing)
    deletion = _deletion(gone)
    await publish(catalog.namespace, deletion)
    await handled(catalog, deletion)

    assert len(landed) == 1
    assert await _left_by(catalog, gone, words) == []
    _assert_refused(landed[0])
    # The review written before the deletion was detached as usual.
    [kept] = (await _reviews(catalog, product)).values()
    assert kept["text"] == "[removed]" and kept["rating"] == 5


async def test_a_delivery_verifying_a_review_while_the_deletion_runs_does_not_bring_it_back(
    catalog: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server updates a document by replacing it whole: the delivery's verification read
    the review before the deletion detached it and wrote it after, with the author and the
    words in it again."""
    product = await create_product(catalog)
    gone = new_id()
    words = f"{WORDS} {gone}"
    written = await review(catalog, product, gone, 4, text=words)
    assert written.status_code == 201, written.text
    review_id = written.json()["id"]
    mark = stored_reviews.mark_verified

    async def the_deletion_runs_between_the_read_and_the_write(
        db: Any, *, user_id: str, product_ids: Any
    ) -> None:
        if user_id != gone:
            await mark(db, user_id=user_id, product_ids=product_ids)
            return
        read = await db["reviews"].find_one({"_id": review_id})
        deletion = _deletion(gone)
        await publish(catalog.namespace, deletion)
        await handled(catalog, deletion)  # its own consumer group: it runs meanwhile
        await db["reviews"].replace_one({"_id": review_id}, {**read, "verified_purchase": True})

    monkeypatch.setattr(
        stored_reviews, "mark_verified", the_deletion_runs_between_the_read_and_the_write
    )
    order = confirmed(gone, [(product, 1)])
    delivery = Envelope(data=delivered(order))
    await publish(catalog.namespace, delivery)
    await handled(catalog, delivery)

    assert await _left_by(catalog, gone, words) == []
    [kept] = (await _reviews(catalog, product)).values()
    assert (kept["text"], kept["rating"]) == ("[removed]", 4)
