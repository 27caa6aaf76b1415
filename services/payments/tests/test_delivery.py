"""Exactly-once effects under the delivery the saga really gets: duplicates, any arrival order,
and a provider call that times out after the provider acted."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from contracts.events.payments import PaymentAuthorized, PaymentFailed, PaymentVoided
from payments_service.models import CallStatus, PaymentAttempt, ProviderCall
from shopkit.testing import eventually
from sqlalchemy import select, update

from contracts import Envelope, new_id

from .conftest import Stack
from .support import order_cancelled, order_placed, sign, stock_reserved, stripe_event


async def test_duplicated_events_authorize_once(stack: Stack) -> None:
    placed = order_placed()
    reserved = stock_reserved(placed.order_id)
    same = Envelope(data=reserved)

    # The same envelope twice (redelivery) and the same fact under a new id (producer retry).
    await stack.bus.publish(placed, same, same, Envelope(data=reserved), Envelope(data=placed))

    await stack.events.wait_for(placed.order_id, PaymentAuthorized)
    await asyncio.sleep(1.5)
    assert len(stack.events.of(placed.order_id, PaymentAuthorized)) == 1
    assert len(await stack.stripe.intents_of(placed.order_id)) == 1


async def test_reservation_before_the_order_event_still_authorizes_once(stack: Stack) -> None:
    placed = order_placed(total=4_321)
    await stack.bus.publish(stock_reserved(placed.order_id))
    await asyncio.sleep(0.5)
    assert stack.events.of(placed.order_id) == []  # nothing to charge yet: total unknown

    await stack.bus.publish(placed)

    authorized = await stack.events.wait_for(placed.order_id, PaymentAuthorized)
    assert authorized.amount == 4_321


async def test_cancellation_before_the_reservation_never_charges(stack: Stack) -> None:
    placed = order_placed()
    await stack.bus.publish(order_cancelled(placed, "customer_request", "PENDING"))
    await stack.bus.publish(placed, stock_reserved(placed.order_id))
    marker = order_placed()
    await stack.bus.publish(marker, stock_reserved(marker.order_id))

    await stack.events.wait_for(marker.order_id, PaymentAuthorized)
    await asyncio.sleep(1.0)
    assert stack.events.of(placed.order_id) == []
    assert await stack.stripe.intents_of(placed.order_id) == []


async def test_timeout_after_the_provider_acted_leaves_exactly_one_intent(stack: Stack) -> None:
    placed = order_placed()
    # No webhook to the rescue: only the consumer's retry of the recorded request can tell.
    async with stack.webhooks_lost():
        # The provider creates and confirms the intent, then answers after the client gave up.
        await stack.stripe.delay("/v1/payment_intents", 5.0)
        await stack.bus.publish(placed, stock_reserved(placed.order_id))
        authorized = await stack.events.wait_for(placed.order_id, PaymentAuthorized, timeout=40)

    intents = await stack.stripe.intents_of(placed.order_id)
    assert [i["id"] for i in intents] == [authorized.provider_payment_id]
    async with stack.payments.sessionmaker() as session:
        call = await session.scalar(
            select(ProviderCall).where(
                ProviderCall.order_id == placed.order_id, ProviderCall.operation == "authorize"
            )
        )
    assert call is not None
    assert call.idempotency_key == f"order:{placed.order_id}:attempt:1:authorize"
    assert call.status == CallStatus.SUCCEEDED
    assert call.response_id == authorized.provider_payment_id
    await asyncio.sleep(1.0)
    assert len(stack.events.of(placed.order_id, PaymentAuthorized)) == 1


async def test_a_resend_after_the_provider_forgot_the_key_finds_the_first_intent(
    stack: Stack,
) -> None:
    """Stripe forgets idempotency keys after 24 hours. An authorization whose answer was lost,
    resent after that (a parked StockReserved replayed the next day), was a new request: a
    second intent, the customer's card held twice."""
    placed = order_placed()
    async with stack.webhooks_lost():
        await stack.stripe.delay("/v1/payment_intents", 5.0, count=1_000)  # every answer lost
        await stack.bus.publish(placed, stock_reserved(placed.order_id))

        async def created() -> list[dict[str, object]] | None:
            return await stack.stripe.intents_of(placed.order_id) or None

        first = (await eventually(created))[0]
        # A day later: the attempt is old, and the provider no longer knows its key.
        async with stack.payments.sessionmaker() as session, session.begin():
            await session.execute(
                update(PaymentAttempt)
                .where(PaymentAttempt.order_id == placed.order_id)
                .values(created_at=PaymentAttempt.created_at - timedelta(days=2))
            )
        await stack.stripe.forget_keys(f"order:{placed.order_id}:")
        await stack.stripe.clear_delays()
        authorized = await stack.events.wait_for(placed.order_id, PaymentAuthorized, timeout=60)

    assert authorized.provider_payment_id == first["id"]
    assert [i["id"] for i in await stack.stripe.intents_of(placed.order_id)] == [first["id"]]


async def test_webhook_landing_while_the_confirm_timed_out_authorizes_once(stack: Stack) -> None:
    placed = order_placed()
    await stack.stripe.delay("/v1/payment_intents", 5.0)
    await stack.bus.publish(placed, stock_reserved(placed.order_id))

    async def created() -> list[dict[str, object]] | None:
        return await stack.stripe.intents_of(placed.order_id) or None

    intent = (await eventually(created))[0]
    # The webhook may be applied before the consumer's retry learns the answer: the attempt is
    # found by the payment id in the intent's metadata.
    payload = stripe_event("payment_intent.amount_capturable_updated", intent)
    response = await stack.client.post(
        "/api/payments/webhooks/stripe",
        content=payload,
        headers={"Stripe-Signature": sign(payload)},
    )
    assert response.status_code == 200

    await stack.events.wait_for(placed.order_id, PaymentAuthorized, timeout=40)
    await asyncio.sleep(2.0)
    assert len(stack.events.of(placed.order_id, PaymentAuthorized)) == 1
    assert len(await stack.stripe.intents_of(placed.order_id)) == 1


async def test_cancellation_while_the_answer_is_unknown_voids_once_it_is_known(
    stack: Stack,
) -> None:
    placed = order_placed()
    async with stack.webhooks_lost():
        await stack.stripe.delay("/v1/payment_intents", 5.0)
        await stack.bus.publish(placed, stock_reserved(placed.order_id))

        async def created() -> list[dict[str, object]] | None:
            return await stack.stripe.intents_of(placed.order_id) or None

        await eventually(created)
        # Cancelled while the confirm's answer is lost: whoever learns the answer voids it.
        await stack.bus.publish(order_cancelled(placed, "reservation_expired", "PENDING"))
        voided = await stack.events.wait_for(placed.order_id, PaymentVoided, timeout=40)

    assert voided.reason == "reservation_expired"
    intents = await stack.stripe.intents_of(placed.order_id)
    assert [i["status"] for i in intents] == ["canceled"]
    await asyncio.sleep(1.0)
    assert len(stack.events.of(placed.order_id, PaymentVoided)) == 1
    # Depending on who got the order's lock first, an authorization may precede the void;
    # never two, and the hold never survives the cancellation.
    assert len(stack.events.of(placed.order_id, PaymentAuthorized)) <= 1
    view = await stack.client.get(
        f"/api/payments/orders/{placed.order_id}", headers=stack.tokens.headers(placed.user_id)
    )
    assert view.json()["status"] == "voided"


async def test_unknown_payment_method_fails_without_a_retry_storm(stack: Stack) -> None:
    placed = order_placed(payment_method_id=f"pm_does_not_exist_{new_id()[:8]}")
    await stack.bus.publish(placed, stock_reserved(placed.order_id))

    failed = await stack.events.wait_for(placed.order_id, PaymentFailed)
    assert failed.reason == "declined"
    assert failed.decline_code == "invalid_payment_method"
    assert await stack.stripe.intents_of(placed.order_id) == []
