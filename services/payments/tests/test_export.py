"""GET /api/payments/me/export: the payments and refunds of the caller's orders (the order's
owner as payments learnt it from OrderPlaced), nobody else's, without provider secrets."""

from __future__ import annotations

from contracts.events.payments import PaymentActionRequired, PaymentRefunded

from contracts import new_id

from .conftest import Stack
from .support import THREE_DS_2, order_placed, stock_reserved
from .test_compensation import admin_headers, authorized_order, captured_order


async def test_export_holds_attempts_and_refunds_of_own_orders(stack: Stack) -> None:
    alice = new_id()
    placed, captured = await captured_order(stack, user_id=alice, total=10_000)
    refund = await stack.client.post(
        f"/api/payments/orders/{placed.order_id}/refunds",
        json={"amount": 2_500, "reason": "damaged item"},
        headers=admin_headers(stack, f"export-{placed.order_id}"),
    )
    assert refund.status_code == 201, refund.text
    await stack.events.wait_for(placed.order_id, PaymentRefunded)
    waiting = order_placed(user_id=alice, payment_method_id=await stack.stripe.card(THREE_DS_2))
    await stack.bus.publish(waiting, stock_reserved(waiting.order_id))
    action = await stack.events.wait_for(waiting.order_id, PaymentActionRequired)
    others, _ = await authorized_order(stack)

    response = await stack.client.get(
        "/api/payments/me/export", headers=stack.tokens.headers(alice)
    )

    assert response.status_code == 200, response.text
    export = response.json()
    assert export["user_id"] == alice
    by_order = {o["order_id"]: o for o in export["orders"]}
    assert set(by_order) == {placed.order_id, waiting.order_id}  # not someone else's
    paid = by_order[placed.order_id]
    assert (paid["amount"], paid["currency"], paid["status"]) == (
        10_000,
        "BRL",
        "partially_refunded",
    )
    assert (paid["amount_captured"], paid["amount_refunded"]) == (10_000, 2_500)
    [attempt] = paid["attempts"]
    assert attempt["payment_id"] == captured.payment_id
    assert (attempt["card_brand"], attempt["card_last4"]) == ("visa", "4242")
    assert attempt["created_at"]
    assert attempt["risk"] is None
    [refunded] = paid["refunds"]
    assert (refunded["amount"], refunded["currency"], refunded["status"]) == (
        2_500,
        "BRL",
        "succeeded",
    )
    assert by_order[waiting.order_id]["status"] == "requires_action"
    # The 3-D Secure client secret completes a payment: never part of the export.
    assert by_order[waiting.order_id]["attempts"][0]["next_action"] is None
    assert action.next_action.client_secret not in response.text
    assert others.order_id not in response.text


async def test_a_user_without_orders_gets_an_empty_list(stack: Stack) -> None:
    nobody = new_id()
    response = await stack.client.get(
        "/api/payments/me/export", headers=stack.tokens.headers(nobody)
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"user_id": nobody, "orders": []}


async def test_export_needs_a_valid_token(stack: Stack) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        response = await stack.client.get("/api/payments/me/export", headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
