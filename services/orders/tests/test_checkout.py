"""Checkout: the order, its amounts and OrderPlaced; idempotency; every kind of bad input."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, tzinfo
from typing import Any

import pytest
from contracts.events.orders import OrderPlaced
from orders_service.repository import checkout as checkout_repository
from orders_service.service import checkout as checkout_service

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


async def test_an_address_whose_cep_lies_in_another_state_is_refused(harness: Harness) -> None:
    """The quote is priced for the CEP's state while the label names another: Manaus, AM with
    a São Paulo CEP was accepted."""
    user = harness.user()
    product = await harness.product(price=1000)
    await harness.fill_cart(user, (product, 1))
    body = harness.checkout_body([(product.sku, 1)])  # quoted for 01310100 (São Paulo, SP)
    body["shipping_address"] = harness.address(state="AM", city="Manaus", cep="01310-100")

    refused = assert_problem(await harness.checkout(user, body), 422, "validation-error")
    assert refused["errors"][0]["loc"] == ["body", "shipping_address", "cep"]
    assert "SP" in refused["detail"] and "AM" in refused["detail"]
    assert await _orders_of(harness, user) == 0

    # The same street in a CEP of Amazonas, quoted for that CEP, is an order.
    manaus = {
        **harness.checkout_body([(product.sku, 1)], cep="69005000"),
        "shipping_address": harness.address(state="AM", city="Manaus", cep="69005-000"),
    }
    assert (await harness.checkout(user, manaus)).status_code == 202


async def _shown_total(harness: Harness, user: dict[str, str], shipping: int) -> int:
    """What the client showed: the cart's total plus the chosen quote's price."""
    cart = (await harness.client.get("/api/cart", headers=user)).json()
    return int(cart["total"]) + shipping


async def test_a_price_change_after_the_cart_was_shown_is_refused_and_changes_nothing(
    harness: Harness,
) -> None:
    """A PriceChanged landing between GET /api/cart and POST /api/orders charged the new price
    silently; with `expected_total` the client learns it instead."""
    admin, user = harness.admin(), harness.user()
    code = f"P{new_id()[-10:]}".upper().replace("-", "")
    created = await harness.client.post(
        "/api/coupons",
        headers=admin,
        json={"code": code, "kind": "percentage", "percent_off": 10, "max_uses": 1},
    )
    assert created.status_code == 201, created.text
    product = await harness.product(price=1000)
    await harness.fill_cart(user, (product, 2))
    assert (
        await harness.client.post("/api/cart/coupon", headers=user, json={"code": code})
    ).status_code == 200
    shown = await _shown_total(harness, user, shipping=1500)
    assert shown == 2000 - 200 + 1500

    await harness.change_price(product, 1200)
    body = {**harness.checkout_body([(product.sku, 2)], price=1500), "expected_total": shown}
    key = new_id()
    refused = assert_problem(await harness.checkout(user, body, key=key), 409, "price-changed")
    assert {k: refused[k] for k in ("subtotal", "discount", "shipping", "total", "currency")} == {
        "subtotal": 2400,
        "discount": 240,
        "shipping": 1500,
        "total": 2400 - 240 + 1500,
        "currency": "BRL",
    }
    assert refused["expected_total"] == shown

    # No order, the coupon's only use is still there, the cart is as it was.
    assert await _orders_of(harness, user) == 0
    coupon = (await harness.client.get(f"/api/coupons/{code}", headers=admin)).json()
    assert coupon["uses"] == 0
    cart = (await harness.client.get("/api/cart", headers=user)).json()
    assert [(i["sku"], i["quantity"]) for i in cart["items"]] == [(product.sku, 2)]
    assert cart["coupon_code"] == code

    # The refusal was not stored as the key's outcome: the same request is refused again...
    assert_problem(await harness.checkout(user, body, key=key), 409, "price-changed")
    # ...and, once the client agrees to the new total, the same key places the order.
    agreed = {**body, "expected_total": refused["total"]}
    placed = await harness.checkout(user, agreed, key=key)
    assert placed.status_code == 202, placed.text
    assert placed.json()["total"] == refused["total"]
    replay = await harness.checkout(user, agreed, key=key)
    assert replay.status_code == 202 and replay.json() == placed.json()
    assert await _orders_of(harness, user) == 1


async def test_the_expected_total_when_it_matches_places_the_order(harness: Harness) -> None:
    user = harness.user()
    product = await harness.product(price=2500)
    await harness.fill_cart(user, (product, 2))
    body = {
        **harness.checkout_body([(product.sku, 2)], price=900),
        "expected_total": await _shown_total(harness, user, shipping=900),
    }
    response = await harness.checkout(user, body)
    assert response.status_code == 202, response.text
    assert response.json()["total"] == 5000 + 900


async def test_the_expected_total_is_a_non_negative_integer(harness: Harness) -> None:
    user = harness.user()
    product = await harness.product()
    await harness.fill_cart(user, (product, 1))
    good = harness.checkout_body([(product.sku, 1)])
    for value in (-1, 1.5, "3490", True):
        assert_problem(
            await harness.checkout(user, {**good, "expected_total": value}),
            422,
            "validation-error",
        )
    assert await _orders_of(harness, user) == 0


async def test_a_quote_that_expires_while_checkout_waits_for_the_cart_is_refused(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Waiting for the cart lock (another checkout of the same user) is simulated without
    sleeping: the checkout's clock jumps ten minutes while `begin` runs."""
    user = harness.user()
    product = await harness.product(price=1000)
    await harness.fill_cart(user, (product, 1))
    body = harness.checkout_body([(product.sku, 1)], expires_in=timedelta(minutes=5))

    class Clock(datetime):
        offset = timedelta()

        @classmethod
        def now(cls, tz: tzinfo | None = None) -> Clock:
            moved = datetime.now(tz) + cls.offset
            return cls.fromtimestamp(moved.timestamp(), tz)

    real_begin = checkout_repository.begin

    async def slow_begin(*args: Any, **kwargs: Any) -> checkout_repository.CheckoutStart:
        start = await real_begin(*args, **kwargs)
        Clock.offset = timedelta(minutes=10)  # the lock was held that long
        return start

    monkeypatch.setattr(checkout_service, "datetime", Clock)
    monkeypatch.setattr(checkout_repository, "begin", slow_begin)
    response = await harness.checkout(user, body)
    assert_problem(response, 409, "expired-shipping-quote")
    monkeypatch.undo()
    cart = (await harness.client.get("/api/cart", headers=user)).json()
    assert cart["item_count"] == 1  # nothing was placed
