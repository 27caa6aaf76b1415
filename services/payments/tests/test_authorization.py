"""StockReserved -> one manual-capture PaymentIntent for exactly the order total, and each test
card's outcome, end to end through Kafka and localstripe."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from contracts.events.payments import (
    PaymentActionRequired,
    PaymentAuthorized,
    PaymentFailed,
    PaymentVoided,
)
from payments_service.provider import Intent
from shopkit.testing import eventually
from sqlalchemy import text

from .conftest import Stack
from .support import (
    DECLINED,
    INSUFFICIENT_FUNDS,
    THREE_DS_2,
    THREE_DS_REQUIRED,
    VISA,
    order_cancelled,
    order_placed,
    sign,
    stock_reserved,
    stripe_event,
)


async def test_success_card_authorizes_exactly_the_order_total(stack: Stack) -> None:
    placed = order_placed(total=25_490, payment_method_id=await stack.stripe.card(VISA))
    await stack.bus.publish(placed, stock_reserved(placed.order_id))

    authorized = await stack.events.wait_for(placed.order_id, PaymentAuthorized)

    assert authorized.amount == 25_490
    assert authorized.currency == "BRL"
    intents = await stack.stripe.intents_of(placed.order_id)
    assert len(intents) == 1
    intent = intents[0]
    assert intent["id"] == authorized.provider_payment_id
    assert intent["status"] == "requires_capture"
    assert intent["capture_method"] == "manual"
    assert (intent["amount"], intent["currency"]) == (25_490, "brl")
    assert intent["metadata"]["payment_id"] == authorized.payment_id


async def test_test_payment_method_ids_work(stack: Stack) -> None:
    placed = order_placed(payment_method_id="pm_card_visa")
    await stack.bus.publish(placed, stock_reserved(placed.order_id))

    authorized = await stack.events.wait_for(placed.order_id, PaymentAuthorized)
    assert authorized.amount == placed.total


@pytest.mark.parametrize(
    ("number", "decline_code"),
    [
        (DECLINED, "generic_decline"),
        (INSUFFICIENT_FUNDS, "insufficient_funds"),
    ],
)
async def test_declined_cards_fail_with_their_decline_code(
    stack: Stack, number: str, decline_code: str
) -> None:
    placed = order_placed(payment_method_id=await stack.stripe.card(number))
    await stack.bus.publish(placed, stock_reserved(placed.order_id))

    failed = await stack.events.wait_for(placed.order_id, PaymentFailed)

    assert failed.reason == "declined"
    assert failed.decline_code == decline_code
    assert stack.events.of(placed.order_id, PaymentAuthorized) == []
    intents = await stack.stripe.intents_of(placed.order_id)
    assert [i["status"] for i in intents] == ["requires_payment_method"]


@pytest.mark.parametrize("number", [THREE_DS_2, THREE_DS_REQUIRED])
async def test_3ds_completed_by_the_customer_authorizes(stack: Stack, number: str) -> None:
    placed = order_placed(payment_method_id=await stack.stripe.card(number))
    await stack.bus.publish(placed, stock_reserved(placed.order_id))

    action = await stack.events.wait_for(placed.order_id, PaymentActionRequired)
    assert action.next_action.client_secret
    assert action.amount == placed.total
    assert stack.events.of(placed.order_id, PaymentAuthorized) == []

    intent = await stack.stripe.intent(action.provider_payment_id)
    assert intent["status"] == "requires_action"
    assert intent["client_secret"] == action.next_action.client_secret
    assert await stack.stripe.authenticate(intent) == "requires_capture"

    # Completion reaches the service only as a webhook from localstripe.
    authorized = await stack.events.wait_for(placed.order_id, PaymentAuthorized)
    assert authorized.payment_id == action.payment_id
    assert authorized.amount == placed.total


async def test_3ds_failed_challenge_fails_the_payment(stack: Stack) -> None:
    placed = order_placed(payment_method_id=await stack.stripe.card(THREE_DS_2))
    await stack.bus.publish(placed, stock_reserved(placed.order_id))
    action = await stack.events.wait_for(placed.order_id, PaymentActionRequired)

    await stack.stripe.authenticate(
        await stack.stripe.intent(action.provider_payment_id), success=False
    )

    failed = await stack.events.wait_for(placed.order_id, PaymentFailed)
    assert failed.reason == "declined"
    assert failed.decline_code == "payment_intent_authentication_failure"
    assert stack.events.of(placed.order_id, PaymentAuthorized) == []
    # The browser keeps the client secret and could confirm the intent again ("try another
    # card") into a hold nobody would release: the order is over, so the intent is closed.
    intent = await stack.stripe.intent(action.provider_payment_id)
    assert intent["status"] == "canceled"


async def test_a_failed_payment_authorized_after_all_is_released(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A declined attempt whose intent later reports an authorization (confirmed again by the
    customer): the notice used to be stored as "no news" and the hold stayed on the card."""
    placed = order_placed(payment_method_id=await stack.stripe.card(DECLINED))
    await stack.bus.publish(placed, stock_reserved(placed.order_id))
    failed = await stack.events.wait_for(placed.order_id, PaymentFailed)
    intent_id = failed.provider_payment_id
    provider = stack.payments.provider
    retrieve = provider.retrieve

    async def authorized_again(intent: str) -> Intent:
        found = await retrieve(intent)
        if intent != intent_id or found.status != "requires_payment_method":
            return found
        return replace(found, status="requires_capture", amount_capturable=found.amount)

    monkeypatch.setattr(provider, "retrieve", authorized_again)
    payload = stripe_event(
        "payment_intent.amount_capturable_updated", {"object": "payment_intent", "id": intent_id}
    )
    response = await stack.client.post(
        "/api/payments/webhooks/stripe",
        content=payload,
        headers={"Stripe-Signature": sign(payload)},
    )
    assert response.status_code == 200, response.text

    async def released() -> bool:
        return bool((await stack.stripe.intent(intent_id))["status"] == "canceled")

    await eventually(released, timeout=20)
    assert stack.events.of(placed.order_id, PaymentAuthorized) == []


async def test_3ds_abandoned_until_the_reservation_expires_is_voided(stack: Stack) -> None:
    placed = order_placed(payment_method_id="pm_card_threeDSecure2Required")
    await stack.bus.publish(placed, stock_reserved(placed.order_id))
    action = await stack.events.wait_for(placed.order_id, PaymentActionRequired)

    await stack.bus.publish(order_cancelled(placed, "reservation_expired", "AWAITING_PAYMENT"))

    voided = await stack.events.wait_for(placed.order_id, PaymentVoided)
    assert voided.payment_id == action.payment_id
    assert voided.reason == "reservation_expired"
    intent = await stack.stripe.intent(action.provider_payment_id)
    assert intent["status"] == "canceled"
    assert intent["cancellation_reason"] == "abandoned"


async def test_a_reservation_that_expired_before_payments_saw_it_is_not_authorized(
    stack: Stack,
) -> None:
    """Payments lagging past the reservation's life authorized anyway: a hold on the card for
    an order inventory was already cancelling, confirmed meanwhile on stock it had lost."""
    placed = order_placed()
    reserved = stock_reserved(placed.order_id).model_copy(
        update={"expires_at": datetime.now(UTC) - timedelta(seconds=1)}
    )
    [_, envelope] = await stack.bus.publish(placed, reserved)

    async def handled() -> bool:
        async with stack.payments.sessionmaker() as session:
            found = await session.scalar(
                text("SELECT count(*) FROM inbox WHERE event_id = :id"), {"id": envelope.id}
            )
        return bool(found)

    await eventually(handled, timeout=20)
    assert await stack.stripe.intents_of(placed.order_id) == []
    assert stack.events.of(placed.order_id) == []
