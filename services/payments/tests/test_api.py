"""GET /api/payments/orders/{order_id}: the owner and admins see an order's payments; nobody
else learns the order exists."""

from __future__ import annotations

from contracts.events.payments import PaymentActionRequired, PaymentAuthorized

from contracts import new_id

from .conftest import Stack
from .support import THREE_DS_2, order_placed, stock_reserved


async def test_owner_sees_attempts_amounts_and_status(stack: Stack) -> None:
    placed = order_placed(total=20_000)
    await stack.bus.publish(placed, stock_reserved(placed.order_id))
    authorized = await stack.events.wait_for(placed.order_id, PaymentAuthorized)

    response = await stack.client.get(
        f"/api/payments/orders/{placed.order_id}", headers=stack.tokens.headers(placed.user_id)
    )

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "authorized"
    assert (body["amount"], body["currency"], body["amount_authorized"]) == (20_000, "BRL", 20_000)
    assert (body["amount_captured"], body["amount_refunded"]) == (0, 0)
    assert body["refunds"] == []
    [attempt] = body["attempts"]
    assert attempt["payment_id"] == authorized.payment_id
    assert attempt["provider_payment_id"] == authorized.provider_payment_id
    assert attempt["card_last4"] == "4242"
    assert attempt["risk"] is None  # risk details are for admins


async def test_owner_sees_what_3ds_needs(stack: Stack) -> None:
    placed = order_placed(payment_method_id=await stack.stripe.card(THREE_DS_2))
    await stack.bus.publish(placed, stock_reserved(placed.order_id))
    action = await stack.events.wait_for(placed.order_id, PaymentActionRequired)

    body = (
        await stack.client.get(
            f"/api/payments/orders/{placed.order_id}", headers=stack.tokens.headers(placed.user_id)
        )
    ).json()

    assert body["status"] == "requires_action"
    assert body["attempts"][0]["next_action"]["client_secret"] == action.next_action.client_secret


async def test_other_users_get_404_and_admins_see_everything(stack: Stack) -> None:
    placed = order_placed()
    await stack.bus.publish(placed, stock_reserved(placed.order_id))
    await stack.events.wait_for(placed.order_id, PaymentAuthorized)
    url = f"/api/payments/orders/{placed.order_id}"

    stranger = await stack.client.get(url, headers=stack.tokens.headers(new_id()))
    unknown = await stack.client.get(
        f"/api/payments/orders/{new_id()}", headers=stack.tokens.headers(placed.user_id)
    )
    anonymous = await stack.client.get(url)
    malformed = await stack.client.get(
        "/api/payments/orders/not-an-id", headers=stack.tokens.headers(placed.user_id)
    )
    admin = await stack.client.get(
        url, headers=stack.tokens.headers(new_id(), ("customer", "admin"))
    )

    assert stranger.status_code == 404
    assert unknown.status_code == 404
    assert stranger.json()["type"] == unknown.json()["type"]  # indistinguishable
    assert anonymous.status_code == 401
    assert malformed.status_code == 422
    for response in (stranger, unknown, anonymous, malformed):
        assert response.headers["content-type"] == "application/problem+json"
    assert admin.status_code == 200
    assert admin.json()["attempts"][0]["risk"]["level"] in ("low", "medium")


async def test_openapi_documents_the_problems(stack: Stack) -> None:
    schema = (await stack.client.get("/openapi.json")).json()
    refund = schema["paths"]["/api/payments/orders/{order_id}/refunds"]["post"]
    assert {"403", "404", "409", "422", "502", "503"} <= set(refund["responses"])
    assert {"name": "Idempotency-Key", "in": "header", "required": True}.items() <= next(
        p for p in refund["parameters"] if p["name"] == "Idempotency-Key"
    ).items()
    webhook = schema["paths"]["/api/payments/webhooks/stripe"]["post"]
    assert "401" in webhook["responses"]
    assert webhook["security"] == [{"stripeSignature": []}]
    assert schema["components"]["securitySchemes"]["stripeSignature"]["name"] == "Stripe-Signature"
