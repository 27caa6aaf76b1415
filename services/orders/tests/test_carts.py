"""Carts: catalog prices only, limits, anonymous carts and their merge, Redis loss."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from contracts.events.catalog import PriceChanged
from orders_service.schemas import MAX_LINE_QUANTITY

from contracts import new_id

from .support import Harness, assert_problem


async def test_cart_shows_catalog_prices_and_totals(harness: Harness) -> None:
    user = harness.user()
    shirt = await harness.product(price=4990)
    mug = await harness.product(price=1250)

    await harness.fill_cart(user, (shirt, 2), (mug, 1), (shirt, 1))
    response = await harness.client.get("/api/cart", headers=user)

    assert response.status_code == 200
    cart = response.json()
    assert [(i["sku"], i["quantity"], i["unit_price"], i["line_total"]) for i in cart["items"]] == [
        (shirt.sku, 3, 4990, 3 * 4990),
        (mug.sku, 1, 1250, 1250),
    ]
    assert cart["subtotal"] == 3 * 4990 + 1250
    assert cart["discount"] == 0
    assert cart["currency"] == "BRL"
    assert cart["coupon_code"] is None
    assert cart["items"][0]["name"] == shirt.name


async def test_client_cannot_send_a_price(harness: Harness) -> None:
    product = await harness.product(price=1000)
    response = await harness.client.post(
        "/api/cart/items",
        headers=harness.user(),
        json={"sku": product.sku, "quantity": 1, "unit_price": 1},
    )
    assert_problem(response, 422, "validation-error")


async def test_price_follows_newer_catalog_versions_only(harness: Harness) -> None:
    user = harness.user()
    product = await harness.product(price=1000)
    await harness.fill_cart(user, (product, 2))

    await harness.change_price(product, 1500, version=3)
    await harness.change_price(product, 900, version=2)  # older: must not win
    await harness.change_price(product, 1700, version=3)  # same version again: no effect
    await harness.wait_for_product(product.product_id, version=3)

    cart = (await harness.client.get("/api/cart", headers=user)).json()
    assert cart["items"][0]["unit_price"] == 1500
    assert cart["subtotal"] == 3000


async def test_change_and_remove_items(harness: Harness) -> None:
    user = harness.user()
    a, b = await harness.product(price=100), await harness.product(price=200)
    await harness.fill_cart(user, (a, 1), (b, 1))

    changed = await harness.client.patch(
        f"/api/cart/items/{a.sku}", headers=user, json={"quantity": 4}
    )
    assert changed.status_code == 200
    assert changed.json()["subtotal"] == 4 * 100 + 200

    removed = await harness.client.delete(f"/api/cart/items/{b.sku}", headers=user)
    assert removed.status_code == 200
    assert [i["sku"] for i in removed.json()["items"]] == [a.sku]

    cart = (await harness.client.get("/api/cart", headers=user)).json()
    assert cart["subtotal"] == 400 and cart["item_count"] == 4

    missing = await harness.client.delete(f"/api/cart/items/{b.sku}", headers=user)
    assert_problem(missing, 404, "cart-item-not-found")


async def test_bad_cart_input_is_a_problem(harness: Harness) -> None:
    user = harness.user()
    product = await harness.product()
    inactive = await harness.product(active=False)

    cases = [
        ({"sku": product.sku, "quantity": -1}, 422, "validation-error"),
        ({"sku": product.sku, "quantity": 0}, 422, "validation-error"),
        ({"sku": product.sku, "quantity": "many"}, 422, "validation-error"),
        ({"sku": "no such sku!", "quantity": 1}, 422, "validation-error"),
        ({"sku": ".hidden", "quantity": 1}, 422, "validation-error"),
        ({"sku": product.sku, "quantity": True}, 422, "validation-error"),
        ({"sku": "UNKNOWN-SKU-" + new_id()[-8:], "quantity": 1}, 404, "unknown-product"),
        ({"sku": inactive.sku, "quantity": 1}, 409, "product-unavailable"),
        # Above the documented maximum: refused by the schema.
        ({"sku": product.sku, "quantity": MAX_LINE_QUANTITY + 1}, 422, "validation-error"),
        ({"sku": product.sku}, 422, "validation-error"),
    ]
    for body, status, slug in cases:
        assert_problem(
            await harness.client.post("/api/cart/items", headers=user, json=body), status, slug
        )

    # Adding up to above the limit is refused too, and leaves the line as it was.
    await harness.fill_cart(user, (product, harness.settings.max_line_quantity))
    assert_problem(
        await harness.client.post(
            "/api/cart/items", headers=user, json={"sku": product.sku, "quantity": 1}
        ),
        409,
        "quantity-limit",
    )
    not_json = await harness.client.post(
        "/api/cart/items",
        headers={**user, "content-type": "application/json"},
        content=b"{not json",
    )
    assert_problem(not_json, 422)
    cart = (await harness.client.get("/api/cart", headers=user)).json()
    assert [(i["sku"], i["quantity"]) for i in cart["items"]] == [
        (product.sku, harness.settings.max_line_quantity)
    ]


async def test_deactivated_product_stays_visible_but_counts_for_nothing(harness: Harness) -> None:
    user = harness.user()
    keep, gone = await harness.product(price=300), await harness.product(price=700)
    await harness.fill_cart(user, (keep, 1), (gone, 1))
    await harness.deactivate(gone)

    cart = (await harness.client.get("/api/cart", headers=user)).json()
    by_sku = {i["sku"]: i for i in cart["items"]}
    assert by_sku[gone.sku]["available"] is False
    assert by_sku[keep.sku]["available"] is True
    assert cart["subtotal"] == 300


async def test_anonymous_cart_merges_into_the_users_cart(harness: Harness) -> None:
    a, b = await harness.product(price=100), await harness.product(price=200)
    first = await harness.client.post("/api/cart/items", json={"sku": a.sku, "quantity": 2})
    assert first.status_code == 200
    cart_id = first.headers["X-Cart-Id"]
    anonymous = {"X-Cart-Id": cart_id}
    more = await harness.client.post(
        "/api/cart/items", headers=anonymous, json={"sku": b.sku, "quantity": 1}
    )
    assert "X-Cart-Id" not in more.headers  # same cart
    assert more.json()["subtotal"] == 2 * 100 + 200

    user = harness.user()
    await harness.fill_cart(user, (a, 1))
    merged = await harness.client.post("/api/cart/merge", headers={**user, **anonymous})
    assert merged.status_code == 200, merged.text
    assert {(i["sku"], i["quantity"]) for i in merged.json()["items"]} == {(a.sku, 3), (b.sku, 1)}
    assert (await harness.client.get("/api/cart", headers=user)).json()["subtotal"] == 3 * 100 + 200

    # The anonymous cart is gone: it cannot be read, nor merged again by anyone.
    assert (await harness.client.get("/api/cart", headers=anonymous)).json()["items"] == []
    again = await harness.client.post("/api/cart/merge", headers={**harness.user(), **anonymous})
    assert_problem(again, 404, "cart-not-found")


async def test_a_merge_beyond_the_cart_size_is_refused_and_changes_nothing(
    harness: Harness,
) -> None:
    """The merge skipped the size rule: the merged cart could be ordered, yet refused every
    later addition."""
    a, b, c = [await harness.product(price=100) for _ in range(3)]
    user = harness.user()
    await harness.fill_cart(user, (a, 1), (b, 1))
    first = await harness.client.post("/api/cart/items", json={"sku": c.sku, "quantity": 1})
    anonymous = {"X-Cart-Id": first.headers["X-Cart-Id"]}
    limit = harness.settings.max_cart_lines
    harness.settings.max_cart_lines = 2
    try:
        refused = await harness.client.post("/api/cart/merge", headers={**user, **anonymous})
    finally:
        harness.settings.max_cart_lines = limit
    assert_problem(refused, 409, "cart-full")
    kept = (await harness.client.get("/api/cart", headers=user)).json()
    assert sorted(i["sku"] for i in kept["items"]) == sorted([a.sku, b.sku])
    still = (await harness.client.get("/api/cart", headers=anonymous)).json()
    assert [i["sku"] for i in still["items"]] == [c.sku]


async def test_a_merge_that_would_mix_currencies_is_refused_and_changes_nothing(
    harness: Harness,
) -> None:
    """Adding a USD item to a BRL cart is refused, but merging it in at login was not: the
    merged cart then showed 1000 USD + 5000 BRL as a subtotal of 6000."""
    real, dollar = (
        await harness.product(price=5000),
        await harness.product(price=1000, currency="USD"),
    )
    user = harness.user()
    await harness.fill_cart(user, (real, 1))
    first = await harness.client.post("/api/cart/items", json={"sku": dollar.sku, "quantity": 1})
    anonymous = {"X-Cart-Id": first.headers["X-Cart-Id"]}

    refused = await harness.client.post("/api/cart/merge", headers={**user, **anonymous})

    assert_problem(refused, 409, "currency-mismatch")
    kept = (await harness.client.get("/api/cart", headers=user)).json()
    assert [(i["sku"], i["quantity"]) for i in kept["items"]] == [(real.sku, 1)]
    assert (kept["subtotal"], kept["currency"]) == (5000, "BRL")
    still = (await harness.client.get("/api/cart", headers=anonymous)).json()
    assert [(i["sku"], i["quantity"]) for i in still["items"]] == [(dollar.sku, 1)]
    assert (still["subtotal"], still["currency"]) == (1000, "USD")


async def test_a_cart_whose_item_changed_currency_never_adds_up_currencies(
    harness: Harness,
) -> None:
    """The catalog may move a product to another currency after it was added: the cart keeps
    its currency, the other line counts for nothing and the cart says why."""
    a, b = await harness.product(price=1000), await harness.product(price=5000)
    user = harness.user()
    await harness.fill_cart(user, (a, 1), (b, 1))
    version = harness.versions[b.product_id] + 1
    harness.versions[b.product_id] = version
    await harness.bus.publish(
        PriceChanged(
            product_id=b.product_id,
            sku=b.sku,
            old_price=b.price,
            new_price=5000,
            currency="USD",
            version=version,
            occurred_at=datetime.now(UTC),
        )
    )
    await harness.wait_for_product(b.product_id, version=version)

    cart = (await harness.client.get("/api/cart", headers=user)).json()

    assert (cart["subtotal"], cart["total"], cart["currency"]) == (1000, 1000, "BRL")
    by_sku = {i["sku"]: i for i in cart["items"]}
    assert by_sku[b.sku]["line_total"] == 0 and by_sku[b.sku]["currency"] == "USD"
    assert by_sku[a.sku]["line_total"] == 1000 and by_sku[a.sku]["currency"] == "BRL"
    assert b.sku in cart["currency_problem"]
    assert_problem(
        await harness.checkout(user, harness.checkout_body([(a.sku, 1), (b.sku, 1)])),
        409,
        "currency-mismatch",
    )


async def test_merge_needs_a_login_and_a_well_formed_cart_id(harness: Harness) -> None:
    assert_problem(
        await harness.client.post("/api/cart/merge", headers={"X-Cart-Id": "x" * 32}), 401
    )
    assert_problem(await harness.client.post("/api/cart/merge", headers=harness.user()), 422)
    assert_problem(
        await harness.client.post(
            "/api/cart/merge", headers={**harness.user(), "X-Cart-Id": "bad id"}
        ),
        422,
    )
    assert_problem(
        await harness.client.post(
            "/api/cart/merge", headers={**harness.user(), "X-Cart-Id": "n" * 32}
        ),
        404,
        "cart-not-found",
    )


async def test_carts_are_private(harness: Harness) -> None:
    alice, bob = harness.user(), harness.user()
    product = await harness.product()
    await harness.fill_cart(alice, (product, 2))

    assert (await harness.client.get("/api/cart", headers=bob)).json()["items"] == []
    assert_problem(await harness.client.delete(f"/api/cart/items/{product.sku}", headers=bob), 404)
    assert_problem(
        await harness.client.patch(
            f"/api/cart/items/{product.sku}", headers=bob, json={"quantity": 1}
        ),
        404,
    )
    assert (await harness.client.get("/api/cart", headers=alice)).json()["items"][0][
        "quantity"
    ] == 2


async def test_cart_survives_losing_its_redis_copy(harness: Harness) -> None:
    user = harness.user()
    product = await harness.product(price=990)
    await harness.fill_cart(user, (product, 3))
    cache = harness.app.state.cart_cache
    redis = harness.app.state.redis

    # As after a Redis restart or eviction: the copy is gone, PostgreSQL still has the cart.
    await redis.delete(cache.key(_owner(harness, user)))
    cart = (await harness.client.get("/api/cart", headers=user)).json()
    assert [(i["sku"], i["quantity"]) for i in cart["items"]] == [(product.sku, 3)]
    # ... and the copy is back.
    assert await redis.exists(cache.key(_owner(harness, user)))


async def test_a_copy_that_could_not_be_replaced_is_not_served(harness: Harness) -> None:
    """The copy is replaced after the commit; when that write failed (a Redis blip), the
    previous copy was served as the cart, for as long as the cart lives (30 days)."""
    from orders_service.cache import COPY_SECONDS_MAX
    from redis.exceptions import ConnectionError as RedisConnectionError

    user = harness.user()
    first, second = await harness.product(price=100), await harness.product(price=200)
    await harness.fill_cart(user, (first, 1))
    cache = harness.app.state.cart_cache
    key = cache.key(_owner(harness, user))
    assert 0 < await harness.app.state.redis.ttl(key) <= COPY_SECONDS_MAX

    working = cache._set_if_newer

    async def blip(**_: object) -> None:
        raise RedisConnectionError("connection reset")

    cache._set_if_newer = blip
    try:
        await harness.fill_cart(user, (second, 1))
    finally:
        cache._set_if_newer = working
    cart = (await harness.client.get("/api/cart", headers=user)).json()
    assert sorted(i["sku"] for i in cart["items"]) == sorted([first.sku, second.sku])


async def test_redis_copy_never_goes_back_to_an_older_cart(harness: Harness) -> None:
    user = harness.user()
    product = await harness.product(price=100)
    await harness.fill_cart(user, (product, 1))
    cache = harness.app.state.cart_cache
    owner = _owner(harness, user)
    stale = await cache.get(owner)
    assert stale is not None

    await harness.fill_cart(user, (product, 1))
    await cache.put(owner, stale)  # a slow reader refilling with what it read earlier
    cart = (await harness.client.get("/api/cart", headers=user)).json()
    assert cart["items"][0]["quantity"] == 2


async def test_expired_cart_starts_over(harness: Harness) -> None:
    user = harness.user()
    old, new = await harness.product(price=100), await harness.product(price=200)
    await harness.fill_cart(user, (old, 2))
    coupon = await harness.client.post(
        "/api/coupons",
        headers=harness.admin(),
        json={"code": f"EXP{new_id()[-8:]}".upper(), "kind": "fixed", "amount_off": 10},
    )
    await harness.client.post(
        "/api/cart/coupon", headers=user, json={"code": coupon.json()["code"]}
    )
    # Thirty days later: PostgreSQL's expiry has passed and the Redis copy's TTL with it.
    async with harness.engine.begin() as conn:
        from sqlalchemy import text

        await conn.execute(
            text("UPDATE carts SET expires_at = now() - interval '1 second' WHERE user_id = :u"),
            {"u": harness.user_id(user)},
        )
    await harness.app.state.redis.delete(harness.app.state.cart_cache.key(_owner(harness, user)))

    assert (await harness.client.get("/api/cart", headers=user)).json()["items"] == []
    cart = await harness.fill_cart(user, (new, 1))
    assert [(i["sku"], i["quantity"]) for i in cart["items"]] == [(new.sku, 1)]
    assert cart["coupon_code"] is None


async def test_unreachable_redis_degrades_to_postgresql(harness: Harness) -> None:
    from orders_service.cache import CartCache, CartSnapshot
    from redis.asyncio import Redis

    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    cache = CartCache(dead, prefix="orders-test:", ttl_seconds=60)
    owner = _owner(harness, harness.user())
    try:
        assert await cache.get(owner) is None  # a miss, not an error: PostgreSQL answers
        await cache.put(owner, CartSnapshot(1, (("SKU-1", 1),), None))  # dropped, not raised
    finally:
        await dead.aclose()


def _owner(harness: Harness, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    from orders_service.cache import CartOwner

    return CartOwner.of_user(harness.user_id(headers))


async def test_a_configured_limit_above_the_default_is_the_one_applied(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(harness.app.state.settings, "max_line_quantity", 100)
    user = harness.user()
    product, other = await harness.product(), await harness.product()
    # 60 in one addition is as acceptable as two additions of 40 (the default limit is 50).
    added = await harness.client.post(
        "/api/cart/items", headers=user, json={"sku": product.sku, "quantity": 60}
    )
    assert added.status_code == 200, added.text
    for _ in range(2):
        response = await harness.client.post(
            "/api/cart/items", headers=user, json={"sku": other.sku, "quantity": 40}
        )
        assert response.status_code == 200, response.text
    updated = await harness.client.patch(
        f"/api/cart/items/{other.sku}", headers=user, json={"quantity": 100}
    )
    assert updated.status_code == 200, updated.text
    # Above the configured limit: the service's 409, in one step or by adding up.
    for method, path, body in (
        ("POST", "/api/cart/items", {"sku": product.sku, "quantity": 41}),
        ("POST", "/api/cart/items", {"sku": other.sku, "quantity": 101}),
        ("PATCH", f"/api/cart/items/{product.sku}", {"quantity": 101}),
    ):
        response = await harness.client.request(method, path, headers=user, json=body)
        assert_problem(response, 409, "quantity-limit")
    cart = (await harness.client.get("/api/cart", headers=user)).json()
    assert {(i["sku"], i["quantity"]) for i in cart["items"]} == {
        (product.sku, 60),
        (other.sku, 100),
    }
