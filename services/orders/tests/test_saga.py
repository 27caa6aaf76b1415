"""The order state machine driven by synthetic events of inventory, payments and shipping,
through the real Kafka topics of this run's namespace and the real orders consumers."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from typing import Any

from contracts.events.inventory import StockReleased, StockReservationFailed, UnavailableLine
from contracts.events.orders import (
    OrderCancellationRequested,
    OrderCancelled,
    OrderConfirmed,
    OrderFulfilmentReleased,
    OrderPlaced,
    OrderStatusChanged,
)
from contracts.events.payments import (
    NextAction,
    PaymentActionRequired,
    PaymentCaptured,
    PaymentFailed,
    PaymentRefunded,
    PaymentReviewResolved,
    PaymentVoided,
)
from contracts.events.shipping import ShipmentCancelled, ShipmentDelivered, ShipmentDispatched
from shopkit.testing import eventually

from contracts import Envelope, Event, new_id

from .support import Harness, assert_problem


def _now() -> datetime:
    return datetime.now(UTC)


def _dispatched(order: dict[str, Any], shipment_id: str) -> ShipmentDispatched:
    return ShipmentDispatched(
        shipment_id=shipment_id,
        order_id=order["id"],
        user_id=order["user_id"],
        carrier="correios",
        tracking_number="BR123",
        dispatched_at=_now(),
    )


def _shipment_cancelled(order: dict[str, Any]) -> ShipmentCancelled:
    """Shipping's answer when it stopped the parcel of a customer's cancellation."""
    return ShipmentCancelled(
        shipment_id=new_id(),
        order_id=order["id"],
        user_id=order["user_id"],
        reason="customer_request",
        cancelled_at=_now(),
    )


def _delivered(order: dict[str, Any], shipment_id: str) -> ShipmentDelivered:
    return ShipmentDelivered(
        shipment_id=shipment_id,
        order_id=order["id"],
        user_id=order["user_id"],
        skus=[line["sku"] for line in order["lines"]],
        tracking_number="BR123",
        delivered_at=_now(),
    )


def _refunded_in_full(order: dict[str, Any], payment_id: str, reason: str) -> PaymentRefunded:
    return PaymentRefunded(
        order_id=order["id"],
        payment_id=payment_id,
        refund_id=new_id(),
        provider_payment_id="pi_x",
        provider_refund_id="re_1",
        amount=order["total"],
        currency="BRL",
        full=True,
        reason=reason,
        refunded_at=_now(),
    )


async def _transitions(harness: Harness, order_id: str, count: int) -> list[tuple[str, str]]:
    changes = await harness.watcher.wait_for(order_id, OrderStatusChanged, count)
    return [(c.data.from_status, c.data.to_status) for c in changes]


async def test_out_of_stock_cancels_the_order(harness: Harness) -> None:
    order, user = await harness.placed_order()
    placed = (await harness.watcher.wait_for(order["id"], OrderPlaced))[0]
    line = order["lines"][0]
    failed = await harness.follow(
        placed,
        StockReservationFailed(
            order_id=order["id"],
            unavailable=[UnavailableLine(sku=line["sku"], requested=line["quantity"], available=0)],
        ),
    )

    cancelled = await harness.wait_status(order["id"], user, "CANCELLED")

    assert cancelled["cancel_reason"] == "out_of_stock"
    last = cancelled["history"][-1]
    assert (last["from"], last["to"], last["reason"], last["event_id"]) == (
        "PENDING",
        "CANCELLED",
        "out_of_stock",
        failed.id,
    )
    event = (await harness.watcher.wait_for(order["id"], OrderCancelled))[0]
    assert event.data.reason == "out_of_stock" and event.data.previous_status == "PENDING"
    assert event.causation_id == failed.id and event.correlation_id == order["id"]
    assert await _transitions(harness, order["id"], 1) == [("PENDING", "CANCELLED")]


async def test_authorized_payment_of_the_total_confirms(harness: Harness) -> None:
    order, user = await harness.placed_order(lines=((2500, 2), (990, 3)))
    reserved = await harness.reserve(order)
    payment_id = new_id()
    authorized = await harness.authorize(order, reserved, payment_id=payment_id)

    confirmed = await harness.wait_status(order["id"], user, "CONFIRMED")

    assert confirmed["payment"]["status"] == "authorized"
    assert confirmed["payment"]["payment_id"] == payment_id
    assert confirmed["history"][-1]["event_id"] == authorized.id
    event = (await harness.watcher.wait_for(order["id"], OrderConfirmed))[0]
    assert event.data.total == order["total"] and event.data.payment_id == payment_id
    assert [(line.sku, line.quantity) for line in event.data.lines] == [
        (line["sku"], line["quantity"]) for line in order["lines"]
    ]
    assert event.data.shipping_address.cep == order["shipping_address"]["cep"]
    assert event.data.shipping_choice.price == order["shipping"]
    assert event.causation_id == authorized.id
    assert await _transitions(harness, order["id"], 1) == [("PENDING", "CONFIRMED")]


async def test_authorization_of_another_amount_never_confirms(harness: Harness) -> None:
    order, user = await harness.placed_order()
    reserved = await harness.reserve(order)
    await harness.authorize(order, reserved, amount=order["total"] - 1)

    cancelled = await harness.wait_status(order["id"], user, "CANCELLED")

    assert cancelled["history"][-1]["reason"] == "payment_amount_mismatch"
    assert (await harness.watcher.wait_for(order["id"], OrderCancelled))[
        0
    ].data.reason == "payment_failed"
    assert harness.watcher.of_type(order["id"], OrderConfirmed) == []


async def test_three_d_secure_waits_then_confirms(harness: Harness) -> None:
    order, user = await harness.placed_order()
    reserved = await harness.reserve(order)
    payment_id = new_id()
    action = NextAction(
        type="redirect_to_url",
        redirect_url="https://stripe.example/3ds/abc",
        client_secret="pi_secret_1",
    )
    await harness.follow(
        reserved,
        PaymentActionRequired(
            order_id=order["id"],
            payment_id=payment_id,
            provider_payment_id="pi_3ds",
            next_action=action,
            amount=order["total"],
            currency="BRL",
        ),
    )

    waiting = await harness.wait_status(order["id"], user, "AWAITING_PAYMENT")
    assert waiting["payment"]["status"] == "action_required"
    assert waiting["payment"]["next_action"] == action.model_dump()

    await harness.authorize(order, reserved, payment_id=payment_id)
    confirmed = await harness.wait_status(order["id"], user, "CONFIRMED")
    assert confirmed["payment"].get("next_action") is None
    assert await _transitions(harness, order["id"], 2) == [
        ("PENDING", "AWAITING_PAYMENT"),
        ("AWAITING_PAYMENT", "CONFIRMED"),
    ]


async def test_three_d_secure_abandoned_cancels(harness: Harness) -> None:
    order, user = await harness.placed_order()
    reserved = await harness.reserve(order)
    payment_id = new_id()
    await harness.follow(
        reserved,
        PaymentActionRequired(
            order_id=order["id"],
            payment_id=payment_id,
            provider_payment_id="pi_3ds",
            next_action=NextAction(type="use_stripe_sdk"),
            amount=order["total"],
            currency="BRL",
        ),
    )
    await harness.wait_status(order["id"], user, "AWAITING_PAYMENT")
    await harness.follow(
        reserved,
        PaymentFailed(
            order_id=order["id"], payment_id=payment_id, reason="action_abandoned", failed_at=_now()
        ),
    )

    cancelled = await harness.wait_status(order["id"], user, "CANCELLED")
    assert cancelled["cancel_reason"] == "payment_failed"
    assert cancelled["payment"]["status"] == "failed"
    event = (await harness.watcher.wait_for(order["id"], OrderCancelled))[0]
    assert event.data.previous_status == "AWAITING_PAYMENT"


async def test_declined_payment_cancels_and_asks_for_compensation(harness: Harness) -> None:
    order, user = await harness.placed_order()
    reserved = await harness.reserve(order)
    payment_id = new_id()
    declined = await harness.follow(
        reserved,
        PaymentFailed(
            order_id=order["id"],
            payment_id=payment_id,
            reason="declined",
            decline_code="card_declined",
            failed_at=_now(),
        ),
    )

    cancelled = await harness.wait_status(order["id"], user, "CANCELLED")
    assert cancelled["history"][-1]["reason"] == "payment_declined"
    assert cancelled["payment"]["payment_id"] == payment_id
    event = (await harness.watcher.wait_for(order["id"], OrderCancelled))[0]
    assert event.data.reason == "payment_failed" and event.causation_id == declined.id


async def test_reservation_expiry_cancels(harness: Harness) -> None:
    order, user = await harness.placed_order()
    reserved = await harness.reserve(order)
    await harness.follow(
        reserved,
        PaymentActionRequired(
            order_id=order["id"],
            payment_id=new_id(),
            provider_payment_id="pi_slow",
            next_action=NextAction(type="use_stripe_sdk"),
            amount=order["total"],
            currency="BRL",
        ),
    )
    await harness.wait_status(order["id"], user, "AWAITING_PAYMENT")
    await harness.follow(
        reserved,
        StockReleased(
            order_id=order["id"],
            reservation_id=reserved.data.reservation_id,  # type: ignore[attr-defined]
            lines=reserved.data.lines,
            reason="expired",
        ),
    )  # type: ignore[attr-defined]

    cancelled = await harness.wait_status(order["id"], user, "CANCELLED")
    assert cancelled["cancel_reason"] == "reservation_expired"
    event = (await harness.watcher.wait_for(order["id"], OrderCancelled))[0]
    assert event.data.reason == "reservation_expired"


async def test_release_after_a_cancellation_changes_nothing(harness: Harness) -> None:
    order, user = await harness.placed_order()
    reserved = await harness.reserve(order)
    await harness.follow(
        reserved,
        PaymentFailed(
            order_id=order["id"], payment_id=new_id(), reason="declined", failed_at=_now()
        ),
    )
    await harness.wait_status(order["id"], user, "CANCELLED")
    # inventory's compensation, and a late expiry of the same reservation
    await harness.follow(
        reserved,
        StockReleased(
            order_id=order["id"], reservation_id=new_id(), lines=[], reason="payment_failed"
        ),
    )
    late = await harness.follow(
        reserved,
        StockReleased(order_id=order["id"], reservation_id=new_id(), lines=[], reason="expired"),
    )
    await _until_ignored(harness, order["id"], late.id)
    final = await harness.order(order["id"], user)
    assert final["status"] == "CANCELLED" and len(final["history"]) == 2
    assert len(harness.watcher.of_type(order["id"], OrderCancelled)) == 1


async def test_fulfilment_ships_delivers_and_refunds(harness: Harness) -> None:
    order, user = await harness.placed_order()
    reserved = await harness.reserve(order)
    payment_id = new_id()
    authorized = await harness.authorize(order, reserved, payment_id=payment_id)
    await harness.wait_status(order["id"], user, "CONFIRMED")
    confirmed = (await harness.watcher.wait_for(order["id"], OrderConfirmed))[0]
    # How the total comes about travels with it (the confirmation email shows it).
    amounts = confirmed.data
    assert (amounts.subtotal, amounts.discount, amounts.shipping) == (
        order["subtotal"],
        order["discount"],
        order["shipping"],
    )
    shipment_id = new_id()
    dispatched = await harness.follow(confirmed, _dispatched(order, shipment_id))
    await harness.follow(
        dispatched,
        PaymentCaptured(
            order_id=order["id"],
            payment_id=payment_id,
            provider_payment_id="pi_x",
            amount=order["total"],
            currency="BRL",
            captured_at=_now(),
        ),
    )
    shipped = await harness.wait_status(order["id"], user, "SHIPPED")
    assert shipped["history"][-1]["event_id"] == dispatched.id
    assert_problem(
        await harness.client.post(f"/api/orders/{order['id']}/cancel", headers=user),
        409,
        "invalid-order-transition",
    )

    await harness.follow(dispatched, _delivered(order, shipment_id))
    delivered = await harness.wait_status(order["id"], user, "DELIVERED")
    assert delivered["payment"]["status"] == "captured"

    await harness.follow(authorized, _refunded_in_full(order, payment_id, "requested_by_customer"))
    refunded = await harness.wait_status(order["id"], user, "REFUNDED")
    assert refunded["payment"]["status"] == "refunded"
    assert [(h["from"], h["to"]) for h in refunded["history"]] == [
        (None, "PENDING"),
        ("PENDING", "CONFIRMED"),
        ("CONFIRMED", "SHIPPED"),
        ("SHIPPED", "DELIVERED"),
        ("DELIVERED", "REFUNDED"),
    ]
    assert len(await _transitions(harness, order["id"], 4)) == 4


async def test_a_full_refund_ends_refunded_whichever_fulfilment_event_comes_first(
    harness: Harness,
) -> None:
    """A full refund before delivery (a lost parcel), or before this service even saw the
    dispatch that captured the payment, was dropped: the order ended DELIVERED or SHIPPED,
    or REFUNDED, depending only on the order the events arrived in."""

    async def fulfilled(refund_after: str) -> tuple[dict[str, Any], dict[str, str]]:
        order, user = await harness.placed_order()
        reserved = await harness.reserve(order)
        payment_id = new_id()
        authorized = await harness.authorize(order, reserved, payment_id=payment_id)
        await harness.wait_status(order["id"], user, "CONFIRMED")
        shipment_id = new_id()
        dispatched = _dispatched(order, shipment_id)
        delivered = _delivered(order, shipment_id)
        refunded = _refunded_in_full(order, payment_id, "parcel_lost")
        if refund_after == "nothing":
            await harness.follow(authorized, refunded)

            async def recorded() -> bool:
                shown = await harness.order(order["id"], user)
                return bool(shown["payment"]["status"] == "refunded")

            await eventually(recorded, timeout=30)
            await harness.follow(authorized, dispatched)
        else:
            await harness.follow(authorized, dispatched)
            await harness.wait_status(order["id"], user, "SHIPPED")
            await harness.follow(authorized, refunded)
        final = await harness.wait_status(order["id"], user, "REFUNDED")
        await harness.follow(authorized, delivered)  # reported late: changes nothing
        return final, user

    for refund_after in ("nothing", "dispatch"):
        final, user = await fulfilled(refund_after)
        assert final["payment"]["status"] == "refunded"
        assert [(h["from"], h["to"]) for h in final["history"]][-2:] == [
            ("CONFIRMED", "SHIPPED"),
            ("SHIPPED", "REFUNDED"),
        ]
        await asyncio.sleep(0.5)
        later = await harness.client.get(f"/api/orders/{final['id']}", headers=user)
        assert later.json()["status"] == "REFUNDED", refund_after


async def test_an_order_confirmed_under_payment_review_is_released_on_approval(
    harness: Harness,
) -> None:
    """A payment flagged for fraud review confirms the order (the stock and the money are
    held), but its parcel waits: OrderConfirmed says so, and only an approval releases it."""
    order, user = await harness.placed_order()
    reserved = await harness.reserve(order)
    payment_id = new_id()
    authorized = await harness.authorize(
        order, reserved, payment_id=payment_id, flagged_for_review=True
    )
    await harness.wait_status(order["id"], user, "CONFIRMED")
    [confirmed] = await harness.watcher.wait_for(order["id"], OrderConfirmed)
    assert confirmed.data.payment_review_pending is True

    rejected_elsewhere = await harness.follow(
        authorized,
        PaymentReviewResolved(
            order_id=new_id(), payment_id=new_id(), decision="rejected", resolved_at=_now()
        ),
    )
    approved = await harness.follow(
        authorized,
        PaymentReviewResolved(
            order_id=order["id"], payment_id=payment_id, decision="approved", resolved_at=_now()
        ),
    )

    [released] = await harness.watcher.wait_for(order["id"], OrderFulfilmentReleased)
    assert released.causation_id == approved.id
    assert harness.watcher.of_type(rejected_elsewhere.data.order_id, OrderFulfilmentReleased) == []
    assert (await harness.order(order["id"], user))["status"] == "CONFIRMED"


async def test_customer_cancels_before_dispatch(harness: Harness) -> None:
    order, user, _ = await harness.confirmed_order()

    response = await harness.client.post(
        f"/api/orders/{order['id']}/cancel", headers=user, json={"reason": "changed my mind"}
    )

    # The parcel may be leaving right now: nothing is cancelled until shipping answers.
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "CONFIRMED"
    assert response.json()["cancellation"]["status"] == "requested"
    assert response.json()["cancellation"]["reason"] == "customer_request"
    requested = (await harness.watcher.wait_for(order["id"], OrderCancellationRequested))[0]
    assert requested.data.reason == "customer_request"
    assert requested.correlation_id == order["id"]
    again = await harness.client.post(f"/api/orders/{order['id']}/cancel", headers=user)
    assert again.status_code == 202 and again.json()["cancellation"]["status"] == "requested"
    assert harness.watcher.of_type(order["id"], OrderCancelled) == []

    stopped = await harness.follow(
        requested,
        _shipment_cancelled(order),
    )

    cancelled = await harness.wait_status(order["id"], user, "CANCELLED")
    assert cancelled["cancel_reason"] == "customer_request"
    assert cancelled["cancellation"]["status"] == "accepted"
    assert cancelled["history"][-1]["reason"] == "changed my mind"
    assert cancelled["history"][-1]["event_id"] == stopped.id
    event = (await harness.watcher.wait_for(order["id"], OrderCancelled))[0]
    assert event.data.reason == "customer_request" and event.data.previous_status == "CONFIRMED"
    assert event.correlation_id == order["id"]
    # The request went out once although it was asked twice.
    assert len(harness.watcher.of_type(order["id"], OrderCancellationRequested)) == 1
    # Cancelling again is refused, and a late dispatch does not revive the order.
    assert_problem(
        await harness.client.post(f"/api/orders/{order['id']}/cancel", headers=user), 409
    )
    confirmed = (await harness.watcher.wait_for(order["id"], OrderConfirmed))[0]
    late = await harness.follow(confirmed, _dispatched(order, new_id()))
    await _until_ignored(harness, order["id"], late.id)
    assert (await harness.order(order["id"], user))["status"] == "CANCELLED"


async def test_a_requested_cancellation_ends_accepted_whatever_cancels_the_order(
    harness: Harness,
) -> None:
    """The reservation expired while shipping had not answered yet: the order was cancelled by
    the expiry and its request stayed `requested` for good (a chaos run waited on it)."""
    order, user, reserved = await harness.confirmed_order()
    response = await harness.client.post(f"/api/orders/{order['id']}/cancel", headers=user)
    assert response.status_code == 202, response.text

    await harness.follow(
        reserved,
        StockReleased(
            order_id=order["id"],
            reservation_id=reserved.data.reservation_id,  # type: ignore[attr-defined]
            lines=[],
            reason="expired",
        ),
    )

    cancelled = await harness.wait_status(order["id"], user, "CANCELLED")
    assert cancelled["cancel_reason"] == "reservation_expired"
    assert cancelled["cancellation"]["status"] == "accepted"


async def test_a_cancellation_that_loses_the_race_to_the_dispatch_ships_the_order(
    harness: Harness,
) -> None:
    """The carrier took the parcel while the cancellation was on its way to shipping. The order
    used to be CANCELLED at once, so payments voided or refunded a customer whose parcel was
    travelling; now the dispatch wins, the payment is captured, and the request is refused."""
    order, user, _ = await harness.confirmed_order()
    response = await harness.client.post(f"/api/orders/{order['id']}/cancel", headers=user)
    assert response.status_code == 202, response.text
    requested = (await harness.watcher.wait_for(order["id"], OrderCancellationRequested))[0]

    dispatched = await harness.follow(requested, _dispatched(order, new_id()))

    shipped = await harness.wait_status(order["id"], user, "SHIPPED")
    assert shipped["cancellation"]["status"] == "refused"
    assert shipped["history"][-1]["reason"] == "dispatched_before_cancellation"
    assert shipped["history"][-1]["event_id"] == dispatched.id
    # An echo that cannot be (shipping never voids a parcel that left) changes nothing either.
    stray = await harness.follow(
        requested,
        _shipment_cancelled(order),
    )
    await _until_ignored(harness, order["id"], stray.id)
    assert (await harness.order(order["id"], user))["status"] == "SHIPPED"
    assert harness.watcher.of_type(order["id"], OrderCancelled) == []


async def test_admin_cancel_is_recorded_as_such(harness: Harness) -> None:
    order, _ = await harness.placed_order()
    admin = harness.admin()
    response = await harness.client.post(f"/api/orders/{order['id']}/cancel", headers=admin)
    assert response.status_code == 200
    assert response.json()["cancel_reason"] == "admin_request"
    event = (await harness.watcher.wait_for(order["id"], OrderCancelled))[0]
    assert event.data.reason == "admin_request"
    assert response.json()["history"][-1]["reason"] == "admin_request"


async def test_late_authorization_of_a_cancelled_order_is_recorded_and_ignored(
    harness: Harness,
) -> None:
    order, user = await harness.placed_order()
    reserved = await harness.reserve(order)
    await harness.client.post(f"/api/orders/{order['id']}/cancel", headers=user)
    late = await harness.authorize(order, reserved)

    ignored = await _until_ignored(harness, order["id"], late.id)

    assert ignored["event_type"] == "shop.payments.payment_authorized.v1"
    assert ignored["order_status"] == "CANCELLED"
    final = await harness.order(order["id"], user)
    assert final["status"] == "CANCELLED"
    assert final["payment"]["status"] == "authorized"  # payments voids it on OrderCancelled
    assert harness.watcher.of_type(order["id"], OrderConfirmed) == []


async def test_duplicates_and_replays_leave_the_same_state(harness: Harness) -> None:
    order, user = await harness.placed_order()
    reserved = await harness.reserve(order)
    authorized = await harness.authorize(order, reserved)
    for _ in range(3):
        await harness.bus.send(authorized)  # the very same event, redelivered
    await harness.wait_status(order["id"], user, "CONFIRMED")
    # A replay of the decline that lost the race, and of the 3DS step, under new ids:
    replayed: list[Envelope[Event]] = [
        await harness.follow(
            reserved,
            PaymentFailed(
                order_id=order["id"], payment_id=new_id(), reason="declined", failed_at=_now()
            ),
        ),
        await harness.follow(
            reserved,
            PaymentActionRequired(
                order_id=order["id"],
                payment_id=new_id(),
                provider_payment_id="pi_r",
                next_action=NextAction(type="use_stripe_sdk"),
                amount=order["total"],
                currency="BRL",
            ),
        ),
        await harness.authorize(order, reserved),
    ]
    for envelope in replayed:
        await _until_ignored(harness, order["id"], envelope.id)

    final = await harness.order(order["id"], user)
    assert final["status"] == "CONFIRMED"
    assert [(h["from"], h["to"]) for h in final["history"]] == [
        (None, "PENDING"),
        ("PENDING", "CONFIRMED"),
    ]
    assert len(harness.watcher.of_type(order["id"], OrderConfirmed)) == 1
    assert harness.watcher.of_type(order["id"], OrderCancelled) == []


async def test_withdrawn_authorization_cancels_a_confirmed_order(harness: Harness) -> None:
    order, user = await harness.placed_order()
    reserved = await harness.reserve(order)
    payment_id = new_id()
    authorized = await harness.authorize(order, reserved, payment_id=payment_id)
    await harness.wait_status(order["id"], user, "CONFIRMED")
    voided = await harness.follow(
        authorized,
        PaymentVoided(
            order_id=order["id"],
            payment_id=payment_id,
            provider_payment_id="pi_v",
            amount=order["total"],
            currency="BRL",
            reason="risk_review_rejected",
            voided_at=_now(),
        ),
    )

    cancelled = await harness.wait_status(order["id"], user, "CANCELLED")

    # Invariant 1: no CONFIRMED order without its authorization.
    assert cancelled["cancel_reason"] == "payment_failed"
    assert cancelled["payment"]["status"] == "voided"
    assert cancelled["history"][-1]["event_id"] == voided.id
    event = (await harness.watcher.wait_for(order["id"], OrderCancelled))[0]
    assert event.data.previous_status == "CONFIRMED"


async def test_void_compensating_a_cancellation_changes_nothing_else(harness: Harness) -> None:
    order, user = await harness.placed_order()
    reserved = await harness.reserve(order)
    payment_id = new_id()
    authorized = await harness.authorize(order, reserved, payment_id=payment_id)
    await harness.wait_status(order["id"], user, "CONFIRMED")
    await harness.cancel_confirmed(order, user)
    cancelled = (await harness.watcher.wait_for(order["id"], OrderCancelled))[0]
    await harness.follow(
        cancelled,
        PaymentVoided(
            order_id=order["id"],
            payment_id=payment_id,
            provider_payment_id="pi_v",
            amount=order["total"],
            currency="BRL",
            reason="customer_request",
            voided_at=_now(),
        ),
    )
    marker = await harness.follow(
        authorized, StockReservationFailed(order_id=order["id"], unavailable=[])
    )
    await _until_ignored(harness, order["id"], marker.id)  # everything before it was handled

    final = await harness.order(order["id"], user)
    assert final["status"] == "CANCELLED" and final["cancel_reason"] == "customer_request"
    assert final["payment"]["status"] == "voided"
    assert len(harness.watcher.of_type(order["id"], OrderCancelled)) == 1
    assert (
        await harness.scalar(
            "SELECT count(*) FROM order_ignored_events WHERE order_id = :o", o=order["id"]
        )
        == 1
    )


async def test_events_for_unknown_orders_are_recorded(harness: Harness) -> None:
    order_id = new_id()
    stray = await harness.bus.publish(StockReservationFailed(order_id=order_id, unavailable=[]))
    ignored = await _until_ignored(harness, order_id, stray.id)
    assert ignored["reason"] == "unknown order"


async def _until_ignored(harness: Harness, order_id: str, event_id: str) -> dict[str, Any]:
    async def recorded() -> dict[str, Any] | None:
        async with harness.engine.connect() as conn:
            from sqlalchemy import text

            row = (
                await conn.execute(
                    text(
                        "SELECT event_type, order_status, reason FROM order_ignored_events "
                        "WHERE order_id = :o AND event_id = :e"
                    ),
                    {"o": order_id, "e": event_id},
                )
            ).first()
        return dict(row._mapping) if row else None

    result: dict[str, Any] = await harness.until(recorded)
    return result


async def test_many_orders_move_concurrently(harness: Harness) -> None:
    placed = [await harness.placed_order() for _ in range(8)]
    reservations = await asyncio.gather(*(harness.reserve(order) for order, _ in placed))
    await asyncio.gather(
        *(
            harness.authorize(order, reserved)
            for (order, _), reserved in zip(placed, reservations, strict=True)
        )
    )
    for order, user in placed:
        await harness.wait_status(order["id"], user, "CONFIRMED")


async def _handled(harness: Harness, order_id: str, event_id: str) -> None:
    """Wait until the order recorded the event: as a transition, or as ignored."""

    async def recorded() -> bool:
        count = await harness.scalar(
            "SELECT (SELECT count(*) FROM order_status_history WHERE order_id = :o AND event_id = :e)"
            " + (SELECT count(*) FROM order_ignored_events WHERE order_id = :o AND event_id = :e)",
            o=order_id,
            e=event_id,
        )
        return bool(count)

    await harness.until(recorded)


async def test_every_order_of_the_events_ends_in_the_same_state(harness: Harness) -> None:
    """Invariant 5: 3DS challenge, authorization and reservation expiry, in all six orders."""
    for permutation in itertools.permutations(("challenge", "authorized", "expired")):
        order, user = await harness.placed_order()
        reserved = await harness.reserve(order)
        payment_id = new_id()
        events = {
            "challenge": PaymentActionRequired(
                order_id=order["id"],
                payment_id=payment_id,
                provider_payment_id="pi_p",
                next_action=NextAction(type="use_stripe_sdk"),
                amount=order["total"],
                currency="BRL",
            ),
            "authorized": None,
            "expired": StockReleased(
                order_id=order["id"], reservation_id=new_id(), lines=[], reason="expired"
            ),
        }
        for name in permutation:
            if name == "authorized":
                sent = await harness.authorize(order, reserved, payment_id=payment_id)
            else:
                event = events[name]
                assert event is not None
                sent = await harness.follow(reserved, event)
            await _handled(harness, order["id"], sent.id)

        final = await harness.order(order["id"], user)
        assert final["status"] == "CANCELLED", permutation
        assert final["cancel_reason"] == "reservation_expired", permutation
        assert len(await harness.watcher.wait_for(order["id"], OrderCancelled)) == 1
