"""GET /api/orders/me/export: the caller's orders (whole), cart and coupon uses, nobody else's;
`me` is never read as an order id."""

from __future__ import annotations

from contracts import new_id

from .support import Harness, assert_problem


async def test_export_holds_orders_cart_and_coupon_uses(harness: Harness) -> None:
    code = f"EXP{new_id()[-8:]}".upper()
    created = await harness.client.post(
        "/api/coupons",
        headers=harness.admin(),
        json={"code": code, "kind": "fixed", "amount_off": 500},
    )
    assert created.status_code == 201, created.text
    alice = harness.user()
    product = await harness.product(price=3000)
    await harness.fill_cart(alice, (product, 2))
    applied = await harness.client.post("/api/cart/coupon", headers=alice, json={"code": code})
    assert applied.status_code == 200, applied.text
    placed = await harness.checkout(alice, harness.checkout_body([(product.sku, 2)], price=1200))
    assert placed.status_code == 202, placed.text
    order = placed.json()
    later = await harness.product(price=990)
    await harness.fill_cart(alice, (later, 3))
    bob = harness.user()
    await harness.placed_order(bob)

    response = await harness.client.get("/api/orders/me/export", headers=alice)

    assert response.status_code == 200, response.text
    export = response.json()
    assert export["user_id"] == harness.user_id(alice)
    [exported] = export["orders"]
    assert exported["id"] == order["id"]
    assert (exported["subtotal"], exported["discount"], exported["shipping"]) == (6000, 500, 1200)
    assert exported["total"] == 6700
    assert [(line["sku"], line["quantity"]) for line in exported["lines"]] == [(product.sku, 2)]
    assert exported["shipping_address"]["street"] == "Avenida Paulista"
    assert exported["shipping_address"]["cep"] == "01310100"
    assert exported["history"][0]["to"] == "PENDING"
    assert exported["created_at"] == order["created_at"]
    assert exported["payment"]["next_action"] is None
    assert [(i["sku"], i["quantity"]) for i in export["cart"]["items"]] == [(later.sku, 3)]
    assert export["cart"]["total"] == 2970
    [redemption] = export["coupon_redemptions"]
    assert (redemption["order_id"], redemption["code"]) == (order["id"], code)
    assert redemption["discount"] == 500
    assert redemption["released_at"] is None


async def test_a_user_without_orders_gets_empty_lists(harness: Harness) -> None:
    await harness.placed_order()  # someone else's
    nobody = harness.user()

    response = await harness.client.get("/api/orders/me/export", headers=nobody)

    assert response.status_code == 200, response.text
    export = response.json()
    assert export["user_id"] == harness.user_id(nobody)
    assert export["orders"] == []
    assert export["coupon_redemptions"] == []
    assert export["cart"]["items"] == [] and export["cart"]["item_count"] == 0


async def test_export_needs_a_token_and_me_is_no_order_id(harness: Harness) -> None:
    assert_problem(await harness.client.get("/api/orders/me/export"), 401)
    assert_problem(
        await harness.client.get("/api/orders/me/export", headers={"Authorization": "Bearer x"}),
        401,
    )
    user = harness.user()
    # The order routes still treat `me` as a (malformed) order id, as before.
    assert_problem(await harness.client.get("/api/orders/me", headers=user), 422)
    assert_problem(await harness.client.get("/api/orders/me/timeline", headers=user), 422)
    listed = await harness.client.get("/api/orders", headers=user)
    assert listed.status_code == 200 and listed.json()["items"] == []
