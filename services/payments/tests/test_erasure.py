"""A deleted account (UserDeletionRequested): what identifies the user leaves their payments;
the amounts, statuses and ids accounting needs stay; a late event of one of its orders stores
none of it again; nobody else's payments change."""

from __future__ import annotations

import asyncio
from typing import Any

from contracts.events.payments import PaymentAuthorized, PaymentCaptured, PaymentRefunded
from contracts.events.users import UserDeletionRequested
from contracts.types import utc_now
from payments_service import repository
from payments_service.models import ErasedUser, PaymentAttempt, PaymentOrder, StripeEvent
from shopkit.testing import eventually
from sqlalchemy import select

from contracts import new_id

from .conftest import Stack
from .support import (
    order_cancelled,
    order_placed,
    shipment_dispatched,
    sign,
    stock_reserved,
    stripe_event,
)
from .test_risk import admin


async def _authorized(stack: Stack, **kwargs: Any) -> PaymentAuthorized:
    placed = order_placed(**kwargs)
    await stack.bus.publish(placed, stock_reserved(placed.order_id))
    authorized: PaymentAuthorized = await stack.events.wait_for(placed.order_id, PaymentAuthorized)
    return authorized


async def _order(stack: Stack, order_id: str) -> PaymentOrder:
    async with stack.payments.sessionmaker() as session:
        order = await session.get(PaymentOrder, order_id)
    assert order is not None
    return order


async def _attempt(stack: Stack, order_id: str) -> PaymentAttempt:
    async with stack.payments.sessionmaker() as session:
        attempt = await session.scalar(
            select(PaymentAttempt).where(PaymentAttempt.order_id == order_id)
        )
    assert attempt is not None
    return attempt


async def _events_of(stack: Stack, intent_id: str) -> list[StripeEvent]:
    async with stack.payments.sessionmaker() as session:
        found = await session.scalars(
            select(StripeEvent).where(StripeEvent.payment_intent_id == intent_id)
        )
        return list(found)


async def _erased(stack: Stack, user_id: str) -> bool:
    async with stack.payments.sessionmaker() as session:
        return await session.get(ErasedUser, user_id) is not None


async def test_deletion_removes_what_identifies_the_user_and_keeps_the_accounts(
    stack: Stack,
) -> None:
    gone, kept = new_id(), new_id()
    reviewed = await _authorized(stack, user_id=gone, total=stack.settings.risk_amount_review)
    noted = await stack.client.post(
        f"/api/payments/reviews/{reviewed.payment_id}",
        json={"decision": "approve", "note": "called Ana Souza at +55 11 91234-5678"},
        headers=admin(stack),
    )
    assert noted.status_code == 200, noted.text
    other = await _authorized(stack, user_id=kept)

    async def provider_copies_applied() -> bool:
        copies = await _events_of(stack, reviewed.provider_payment_id)
        return bool(copies) and all(copy.processed_at is not None for copy in copies)

    await eventually(provider_copies_applied, timeout=30)
    before = await _order(stack, reviewed.order_id)
    assert before.customer_ip and (await _attempt(stack, reviewed.order_id)).card_fingerprint

    await stack.bus.publish(UserDeletionRequested(user_id=gone, requested_at=utc_now()))

    async def scrubbed() -> bool:
        return (await _order(stack, reviewed.order_id)).customer_ip is None

    await eventually(scrubbed, timeout=60)
    order, attempt = (
        await _order(stack, reviewed.order_id),
        await _attempt(stack, reviewed.order_id),
    )
    assert (order.customer_ip, order.shipping_country) == (None, None)
    assert (attempt.card_fingerprint, attempt.card_country) == (None, None)
    assert (attempt.risk_reasons, attempt.review_note) == ([], "[removed]")
    # What accounting, refunds and disputes need is kept.
    assert (order.user_id, order.amount, attempt.amount) == (gone, reviewed.amount, reviewed.amount)
    assert (attempt.card_brand, attempt.card_last4) == ("visa", "4242")
    assert attempt.provider_payment_id == reviewed.provider_payment_id
    assert all(
        copy.payload == {"removed": True}
        for copy in await _events_of(stack, reviewed.provider_payment_id)
    )
    # Somebody else's payments are untouched.
    assert (await _order(stack, other.order_id)).customer_ip
    assert (await _attempt(stack, other.order_id)).card_fingerprint

    # An order of the erased account arriving late stores none of it again.
    late = await _authorized(stack, user_id=gone)
    late_order, late_attempt = (
        await _order(stack, late.order_id),
        await _attempt(stack, late.order_id),
    )
    assert (late_order.customer_ip, late_order.shipping_country) == (None, None)
    assert (late_attempt.card_fingerprint, late_attempt.card_country) == (None, None)
    assert late_attempt.card_last4 == "4242"


async def test_an_order_being_stored_when_the_deletion_arrives_is_scrubbed_after_it_commits(
    stack: Stack,
) -> None:
    """The erasure cannot see a row a transaction has not committed yet: it waits for every
    transaction that holds the user (`repository.ERASURES`), and then scrubs what they wrote."""
    gone = new_id()
    order_id = new_id()
    async with stack.payments.sessionmaker() as session, session.begin():
        assert not await repository.ERASURES.hold(session, gone)
        session.add(
            PaymentOrder(
                order_id=order_id, user_id=gone, customer_ip="198.51.100.7", shipping_country="BR"
            )
        )
        await session.flush()
        await stack.bus.publish(UserDeletionRequested(user_id=gone, requested_at=utc_now()))
        await asyncio.sleep(2)  # the deletion is handled meanwhile, as far as it can go
        assert not await _erased(stack, gone)  # it waits for this transaction

    await eventually(lambda: _erased(stack, gone), timeout=60)

    async def scrubbed() -> bool:
        return (await _order(stack, order_id)).customer_ip is None

    await eventually(scrubbed, timeout=60)


async def test_provider_events_arriving_after_the_deletion_keep_no_copy(stack: Stack) -> None:
    """The erasure scrubbed the provider events applied by then; the ones its order's refund
    brought afterwards (and a late notice settled on arrival) kept billing details for good."""
    gone = new_id()
    placed = order_placed(user_id=gone)
    await stack.bus.publish(placed, stock_reserved(placed.order_id))
    authorized = await stack.events.wait_for(placed.order_id, PaymentAuthorized)
    intent_id = authorized.provider_payment_id
    await stack.bus.publish(shipment_dispatched(placed))
    await stack.events.wait_for(placed.order_id, PaymentCaptured)
    await stack.bus.publish(UserDeletionRequested(user_id=gone, requested_at=utc_now()))

    async def scrubbed() -> bool:
        return (await _order(stack, placed.order_id)).customer_ip is None

    await eventually(scrubbed, timeout=60)
    # The erased account's order is refunded afterwards: Stripe tells of it by webhook.
    await stack.bus.publish(order_cancelled(placed, reason="customer_request"))
    await stack.events.wait_for(placed.order_id, PaymentRefunded)
    late = stripe_event(
        "payment_intent.amount_capturable_updated", {"object": "payment_intent", "id": intent_id}
    )
    response = await stack.client.post(
        "/api/payments/webhooks/stripe", content=late, headers={"Stripe-Signature": sign(late)}
    )
    assert response.status_code == 200, response.text

    async def refund_notices_processed() -> list[StripeEvent] | None:
        copies = await _events_of(stack, intent_id)
        refunded = any(copy.type == "charge.refunded" for copy in copies)
        done = all(copy.processed_at is not None for copy in copies)
        return copies if refunded and done else None

    copies = await eventually(refund_notices_processed, timeout=30)
    assert [c.type for c in copies if c.payload != {"removed": True}] == []
