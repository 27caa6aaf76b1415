"""Checkout: the order, its amounts and OrderPlaced; idempotency; every kind of bad input."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from contracts.events.orders import OrderPlaced

from contracts import new_id

from .support import Harness, assert_problem


async def test_checkout_stores_a_pending_order_and_starts_the_saga(harness: Harness) -> None:
    user = harness.user()
    shirt, mug = await harness.product(price=4990), await harness.product(price=1250)
    await harness.fill_cart(user, (shirt, 2), (mug, 1))
    body = harness.checkout_body([(shirt.sku, 2), (mug.sku, 1)], price=1890)

    response = await harness.client.post(
        "/api/orders",
        json=body,
        headers={**user, "Idempotency-Key": new_id(), "X-Forwarded-For": "203.0.113.9"},
    )

    assert response.status_code == 202, response.text
    order = response.json()
    assert response.headers["Location"] == f"/api/orders/{order['id']}"
    assert order["status"] == "PENDING"
    assert (order["subtotal"], order["discount"], order["shipping"]) == (2 * 4990 + 1250, 0, 1890)
    assert order["total"] == order["subtotal"] - order["discount"] + order["shipping"]
    assert [(line["sku"], line["quantity"], line["unit_price"]) for line in order["lines"]] == [
        (shirt.sku, 2, 4990),
        (mug.sku, 1, 1250),
    ]
    assert order["shipping_address"]["cep"] == "01310100"
    assert order["history"] == [
        {
            "from": None,
            "to": "PENDING",
            "reason": "placed",
            "at": order["history"][0]["at"],
            "event_id": None,
            "event_type": None,
        }
    ]
    assert order["payment"]["status"] == "pending"

    # The same order, read back.
    stored = await harness.order(order["id"], user)
    for field in (
        "status",
        "lines",
        "subtotal",
        "discount",
        "shipping",
        "total",
        "currency",
        "shipping_address",
        "shipping_choice",
    ):
        assert stored[field] == order[field], field

    placed = (await harness.watcher.wait_for(order["id"], OrderPlaced))[0]
    assert placed.correlation_id == order["id"]
    event = placed.data
    assert event.user_id == harness.user_id(user)
    assert (event.subtotal, event.discount, event.shipping, event.total) == (
        order["subtotal"],
        order["discount"],
        order["shipping"],
        order["total"],
    )
    assert event.customer_ip == "203.0.113.9"
    assert event.payment_method_id == "pm_card_visa"
    assert event.shipping_choice.price == 1890 and event.shipping_choice.carrier == "correios"
    assert [(line.sku, line.quantity, line.line_total) for line in event.lines] == [
        (shirt.sku, 2, 9980),
        (mug.sku, 1, 1250),
    ]

    # The cart was emptied by the same transaction.
    assert (await harness.client.get("/api/cart", headers=user)).json()["items"] == []


async def test_customer_ip_is_the_address_the_gateway_saw(harness: Harness) -> None:
    user = harness.user()
    product = await harness.product(price=1000)
    await harness.fill_cart(user, (product, 1))
    response = await harness.client.post(
        "/api/orders",
        json=harness.checkout_body([(product.sku, 1)]),
        # the leftmost entry was written by the client; the gateway appended what it saw
        headers={**user, "Idempotency-Key": new_id(), "X-Forwarded-For": "10.9.9.9, 198.51.100.7"},
    )
    placed = (await harness.watcher.wait_for(response.json()["id"], OrderPlaced))[0]
    assert placed.data.customer_ip == "198.51.100.7"


async def test_same_key_same_body_returns_the_same_order(harness: Harness) -> None:
    user = harness.user()
    product = await harness.product(price=3000)
    await harness.fill_cart(user, (product, 1))
    body, key = harness.checkout_body([(product.sku, 1)]), new_id()

    first = await harness.checkout(user, body, key=key)
    again = await harness.checkout(user, body, key=key)

    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["Location"] == first.headers["Location"]
    assert await _orders_of(harness, user) == 1


async def test_concurrent_retries_make_one_order(harness: Harness) -> None:
    user = harness.user()
    product = await harness.product(price=3000)
    await harness.fill_cart(user, (product, 2))
    body, key = harness.checkout_body([(product.sku, 2)]), new_id()

    responses = await asyncio.gather(*(harness.checkout(user, body, key=key) for _ in range(12)))

    assert {r.status_code for r in responses} == {202}, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert all(r.json() == responses[0].json() for r in responses)
    assert await _orders_of(harness, user) == 1
    order_id = responses[0].json()["id"]
    await harness.watcher.wait_for(order_id, OrderPlaced)
    await asyncio.sleep(0.5)  # any second OrderPlaced would have arrived by now too
    assert len(harness.watcher.of_type(order_id, OrderPlaced)) == 1


async def test_same_key_with_another_body_is_refused(harness: Harness) -> None:
    user = harness.user()
    product = await harness.product(price=3000)
    await harness.fill_cart(user, (product, 1))
    body, key = harness.checkout_body([(product.sku, 1)]), new_id()
    assert (await harness.checkout(user, body, key=key)).status_code == 202

    other = {**body, "payment_method_id": "pm_card_mastercard"}
    assert_problem(await harness.checkout(user, other, key=key), 422, "idempotency-key-reused")
    assert await _orders_of(harness, user) == 1


async def test_keys_belong_to_their_user(harness: Harness) -> None:
    key = new_id()
    for _ in range(2):
        user = harness.user()
        product = await harness.product(price=1000)
        await harness.fill_cart(user, (product, 1))
        response = await harness.checkout(user, harness.checkout_body([(product.sku, 1)]), key=key)
        assert response.status_code == 202
        assert response.json()["user_id"] == harness.user_id(user)


async def test_checkout_needs_an_idempotency_key_and_a_login(harness: Harness) -> None:
    user = harness.user()
    product = await harness.product()
    await harness.fill_cart(user, (product, 1))
    body = harness.checkout_body([(product.sku, 1)])
    missing = assert_problem(
        await harness.client.post("/api/orders", json=body, headers=user),
        422,
        "validation-error",
    )
    assert missing["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    assert_problem(
        await harness.client.post("/api/orders", json=body, headers={"Idempotency-Key": "k"}), 401
    )
    assert await _orders_of(harness, user) == 0


async def test_empty_cart_cannot_be_checked_out(harness: Harness) -> None:
    user = harness.user()
    product = await harness.product()
    assert_problem(
        await harness.checkout(user, harness.checkout_body([(product.sku, 1)])), 409, "empty-cart"
    )
    await harness.fill_cart(user, (product, 1))
    await harness.client.delete(f"/api/cart/items/{product.sku}", headers=user)
    assert_problem(
        await harness.checkout(user, harness.checkout_body([(product.sku, 1)])), 409, "empty-cart"
    )


async def test_quote_must_be_valid_unexpired_and_match_cart_and_address(harness: Harness) -> None:
    user = harness.user()
    a, b = await harness.product(price=1000), await harness.product(price=2000)
    await harness.fill_cart(user, (a, 2), (b, 1))
    items = [(a.sku, 2), (b.sku, 1)]

    def body(quote_id: str) -> dict[str, object]:
        return {**harness.checkout_body(items), "shipping_quote_id": quote_id}

    cases = [  # well-formed quote ids: one that does not verify names no quote (404)
        (harness.quote(items, expires_in=timedelta(seconds=-1)), 409, "expired-shipping-quote"),
        (harness.quote([(a.sku, 1), (b.sku, 1)]), 409, "shipping-quote-mismatch"),
        (harness.quote([(a.sku, 2)]), 409, "shipping-quote-mismatch"),
        (harness.quote(items, cep="20040002"), 409, "shipping-quote-mismatch"),
        (harness.quote(items, currency="USD"), 409, "shipping-quote-mismatch"),
        (harness.quote(items, secret="someone-elses-secret"), 404, "invalid-shipping-quote"),
        (harness.quote(items)[:-3] + "AAA", 404, "invalid-shipping-quote"),
        ("not.a-quote", 404, "invalid-shipping-quote"),
        ("not-a-quote", 422, "validation-error"),
    ]
    for quote_id, status, slug in cases:
        assert_problem(await harness.checkout(user, body(quote_id)), status, slug)

    # Nothing was lost: the cart is intact and still checks out with a good quote.
    assert len((await harness.client.get("/api/cart", headers=user)).json()["items"]) == 2
    assert (await harness.checkout(user, body(harness.quote(items)))).status_code == 202


async def test_malformed_checkout_bodies_are_problems(harness: Harness) -> None:
    user = harness.user()
    product = await harness.product()
    await harness.fill_cart(user, (product, 1))
    good = harness.checkout_body([(product.sku, 1)])
    address = good["shipping_address"]
    bodies = [
        {**good, "shipping_address": {**address, "cep": "1234"}},
        {**good, "shipping_address": {**address, "cep": "ABCDE-FGH"}},
        {**good, "shipping_address": {**address, "state": "XX"}},
        {**good, "shipping_address": {**address, "country": "US"}},
        {**good, "shipping_address": {**address, "street": ""}},
        {**good, "shipping_address": {k: v for k, v in address.items() if k != "city"}},
        {**good, "shipping_address": {**address, "admin": True}},
        {**good, "shipping_address": "Avenida Paulista 1578"},
        {**good, "payment_method_id": "card_4242424242424242"},
        {**good, "total": 1},
        {k: v for k, v in good.items() if k != "shipping_quote_id"},
    ]
    for body in bodies:
        assert_problem(await harness.checkout(user, body), 422, "validation-error")
    assert await _orders_of(harness, user) == 0


async def test_unknown_or_withdrawn_products_block_checkout(harness: Harness) -> None:
    user = harness.user()
    product = await harness.product(price=500)
    await harness.fill_cart(user, (product, 1))
    await harness.deactivate(product)
    assert_problem(
        await harness.checkout(user, harness.checkout_body([(product.sku, 1)])),
        409,
        "product-unavailable",
    )
    assert await _orders_of(harness, user) == 0


async def test_checkout_uses_the_price_at_checkout_time(harness: Harness) -> None:
    user = harness.user()
    product = await harness.product(price=1000)
    await harness.fill_cart(user, (product, 2))
    await harness.change_price(product, 1200)
    response = await harness.checkout(user, harness.checkout_body([(product.sku, 2)], price=0))
    assert response.status_code == 202
    assert response.json()["subtotal"] == 2400 and response.json()["total"] == 2400


async def _orders_of(harness: Harness, user: dict[str, str]) -> int:
    return int(
        await harness.scalar(
            "SELECT count(*) FROM orders WHERE user_id = :u", u=harness.user_id(user)
        )
    )


async def test_concurrent_checkouts_with_different_keys_take_the_cart_once(
    harness: Harness,
) -> None:
    user = harness.user()
    product = await harness.product(price=1500)
    await harness.fill_cart(user, (product, 3))
    body = harness.checkout_body([(product.sku, 3)])

    responses = await asyncio.gather(*(harness.checkout(user, body) for _ in range(6)))

    assert sorted(r.status_code for r in responses) == [202] + [409] * 5, [
        r.text for r in responses
    ]
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409, "empty-cart")
    assert await _orders_of(harness, user) == 1
