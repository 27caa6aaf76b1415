"""Reviews (one per user, verified only after a delivery) and trending, fed by real events."""

from __future__ import annotations

from typing import Any

import pytest
from catalog_service.repository import reviews as stored_reviews
from catalog_service.repository.products import PRODUCTS
from contracts.events.orders import OrderConfirmed, OrderLine, ShippingAddress, ShippingChoice
from contracts.events.shipping import ShipmentDelivered
from contracts.types import utc_now
from shopkit.testing import eventually, publish

from contracts import Envelope, Event, new_id

from .conftest import Running, running_catalog
from .factories import create_product

ADDRESS = ShippingAddress(
    recipient="Ana",
    street="Rua A",
    number="1",
    district="Centro",
    city="Recife",
    state="PE",
    cep="50010000",
)
CHOICE = ShippingChoice(
    quote_id="q", carrier="correios", service="SEDEX", price=3000, estimated_days=2
)


def confirmed(user_id: str, items: list[tuple[dict[str, Any], int]]) -> OrderConfirmed:
    lines = [
        OrderLine(
            sku=p["sku"],
            product_id=p["id"],
            name=p["name"],
            quantity=q,
            unit_price=p["price"],
            line_total=p["price"] * q,
        )
        for p, q in items
    ]
    return OrderConfirmed(
        order_id=new_id(),
        user_id=user_id,
        payment_id=new_id(),
        lines=lines,
        total=sum(line.line_total for line in lines),
        currency="BRL",
        shipping_address=ADDRESS,
        shipping_choice=CHOICE,
        confirmed_at=utc_now(),
    )


def delivered(order: OrderConfirmed) -> ShipmentDelivered:
    return ShipmentDelivered(
        shipment_id=new_id(),
        order_id=order.order_id,
        user_id=order.user_id,
        skus=[line.sku for line in order.lines],
        tracking_number="BR123456789BR",
        delivered_at=utc_now(),
    )


async def handled(catalog: Running, envelope: Envelope[Event]) -> None:
    """Wait until the catalog's consumer recorded the event in its inbox (after its effect)."""

    async def recorded() -> bool:
        for consumer in catalog.app.state.consumers:
            if await consumer.store.recorded(consumer.inbox_name, envelope.id):
                return True
        return False

    await eventually(recorded, timeout=60)


async def review(
    catalog: Running, product: dict[str, Any], user_id: str, rating: int, text: str = "Muito bom"
) -> Any:
    return await catalog.client.post(
        f"/api/products/{product['id']}/reviews",
        json={"rating": rating, "text": text},
        headers=catalog.tokens.headers(user_id),
    )


async def test_one_review_per_user_and_the_product_keeps_the_average(catalog: Running) -> None:
    product = await create_product(catalog)
    ana, bruno = new_id(), new_id()
    first = await review(catalog, product, ana, 5)
    assert first.status_code == 201, first.text
    assert first.json()["verified_purchase"] is False
    assert (await review(catalog, product, ana, 1)).status_code == 409
    assert (await review(catalog, product, bruno, 2)).status_code == 201
    page = (await catalog.client.get(f"/api/products/{product['slug']}")).json()
    assert page["rating"] == {"count": 2, "average": 3.5}
    listed = (await catalog.client.get(f"/api/products/{product['id']}/reviews")).json()
    assert [r["rating"] for r in listed["items"]] == [2, 5]  # newest first
    assert listed["rating"] == {"count": 2, "average": 3.5}
    for body in (
        {"rating": 0, "text": "x"},
        {"rating": 6, "text": "x"},
        {"rating": 4.5, "text": "x"},
        {"rating": 4, "text": ""},
        {"rating": 4},
        {"rating": 4, "text": "x", "extra": 1},
    ):
        response = await catalog.client.post(
            f"/api/products/{product['id']}/reviews", json=body, headers=catalog.tokens.headers()
        )
        assert response.status_code == 422, body
    anonymous = await catalog.client.post(
        f"/api/products/{product['id']}/reviews", json={"rating": 4, "text": "x"}
    )
    assert anonymous.status_code == 401
    missing = await review(catalog, {"id": new_id()}, ana, 4)
    assert missing.status_code == 404


async def test_a_review_of_a_busy_product_is_stored_and_counted_once_the_product_is_free() -> None:
    # A catalog of its own, waiting only briefly for a product's lock, so that the review's
    # recount gives up while this test holds it (as an admin's edit or the relay would).
    async with running_catalog(lock_wait_seconds=0.3) as catalog:
        product = await create_product(catalog)
        ana = new_id()
        locks = catalog.app.state.catalog.locks
        async with locks.leases.hold(locks.name(PRODUCTS, product["id"]), wait=10):
            response = await review(catalog, product, ana, 4)
            assert response.status_code == 201, response.text
            stored = await stored_reviews.by_author(catalog.db, ana)
            assert [doc["_id"] for doc in stored] == [response.json()["id"]]
            again = await review(catalog, product, ana, 4)
            assert again.status_code == 409  # a retry finds it stored

        async def rated() -> bool:
            page = (await catalog.client.get(f"/api/products/{product['id']}")).json()
            listed = (await catalog.client.get(f"/api/products/{product['id']}/reviews")).json()
            counted = {"count": 1, "average": 4.0}
            return bool(page["rating"] == counted and listed["rating"] == counted)

        await eventually(rated, timeout=20, interval=0.2)


async def test_verified_purchase_needs_a_delivery_to_that_user(catalog: Running) -> None:
    product, other = await create_product(catalog), await create_product(catalog)
    buyer, early_reviewer, stranger = new_id(), new_id(), new_id()
    order = confirmed(buyer, [(product, 1)])
    early_order = confirmed(early_reviewer, [(product, 2), (other, 1)])

    # The early reviewer writes before the parcel arrives: not verified yet.
    early = await review(catalog, product, early_reviewer, 4)
    assert early.json()["verified_purchase"] is False

    confirmation = Envelope(data=order)
    await publish(catalog.namespace, confirmation, confirmation, early_order)
    await publish(catalog.namespace, delivered(early_order), delivered(order))

    async def early_review_verified() -> bool:
        listed = (await catalog.client.get(f"/api/products/{product['id']}/reviews")).json()
        return bool(listed["items"] and listed["items"][0]["verified_purchase"])

    await eventually(early_review_verified, timeout=60)
    bought = await review(catalog, product, buyer, 5)
    assert bought.json()["verified_purchase"] is True
    not_bought = await review(catalog, product, stranger, 1)
    assert not_bought.json()["verified_purchase"] is False
    # Delivered to the buyer, but a different product was not part of the buyer's order.
    assert (await review(catalog, other, buyer, 3)).json()["verified_purchase"] is False


async def test_a_delivery_recorded_while_the_review_is_written_verifies_it(
    catalog: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The review found no delivery, then the delivery was recorded and its reviews verified
    before this one was stored."""
    product = await create_product(catalog)
    buyer = new_id()
    delivery = Envelope(data=delivered(confirmed(buyer, [(product, 1)])))
    read = stored_reviews.has_received
    raced: list[bool] = []

    async def delivered_right_after_the_read(db: Any, *, user_id: str, sku: str) -> bool:
        found = await read(db, user_id=user_id, sku=sku)
        if not found and not raced and (user_id, sku) == (buyer, product["sku"]):
            raced.append(True)
            await publish(catalog.namespace, delivery)
            await handled(catalog, delivery)
        return found

    monkeypatch.setattr(stored_reviews, "has_received", delivered_right_after_the_read)
    written = await review(catalog, product, buyer, 5)
    assert raced == [True]
    assert written.status_code == 201, written.text
    listed = (await catalog.client.get(f"/api/products/{product['id']}/reviews")).json()
    assert [r["verified_purchase"] for r in listed["items"]] == [True]
    assert written.json()["verified_purchase"] is True


async def test_a_confirmed_order_alone_does_not_verify(catalog: Running) -> None:
    product = await create_product(catalog)
    buyer = new_id()
    await publish(catalog.namespace, *[confirmed(buyer, [(product, 1)])])

    async def recorded() -> bool:
        found = await catalog.db["purchases"].count_documents({"user_id": buyer})
        return bool(found)

    await eventually(recorded, timeout=60)
    assert (await review(catalog, product, buyer, 4)).json()["verified_purchase"] is False


async def test_trending_ranks_units_of_recently_confirmed_orders_once() -> None:
    # A catalog of its own: sales that other tests made in the shared one would fill the
    # top trending_size and push these products out.
    async with running_catalog() as catalog:
        hot, warm, cold = [await create_product(catalog) for _ in range(3)]
        orders = [
            confirmed(new_id(), [(hot, 3), (warm, 1)]),
            confirmed(new_id(), [(hot, 2)]),
            confirmed(new_id(), [(warm, 2), (cold, 1)]),
        ]
        again = Envelope(data=orders[0])
        await publish(catalog.namespace, *[again, *orders[1:], again])  # the first one twice
        # ...and re-emitted with a new id
        await publish(catalog.namespace, *[Envelope(data=orders[0])])

        ours = {hot["id"], warm["id"], cold["id"]}

        async def ranked() -> list[tuple[str, int]] | None:
            body = (await catalog.client.get("/api/products/trending")).json()
            found = [
                (i["product"]["id"], i["units"])
                for i in body["items"]
                if i["product"]["id"] in ours
            ]
            # Every order counted (events of different partitions may be applied in different
            # batches); an order counted twice would show as more units.
            return found if len(found) == 3 and sum(units for _, units in found) >= 9 else None

        ranking = await eventually(ranked, timeout=60, interval=0.5)
        assert ranking == [(hot["id"], 5), (warm["id"], 3), (cold["id"], 1)]
