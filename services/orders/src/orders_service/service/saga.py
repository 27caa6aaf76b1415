"""Reactions of an order to the saga's events of inventory, payments and shipping.

Each reaction names the transition an event asks for and the states it may come from; the
state machine in transitions.py applies it or records the event as ignored.
"""

from __future__ import annotations

from dataclasses import replace

from contracts.events import inventory, payments, shipping
from contracts.events.orders import CancelReason, OrderFulfilmentReleased, OrderStatus
from contracts.types import utc_now
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope
from orders_service.models import STATUS_NOTE_LENGTH
from orders_service.repository import orders
from orders_service.service.transitions import (
    Cause,
    Emit,
    cause_of,
    ignore,
    move,
    transition,
)
from orders_service.state import IN_FLIGHT, as_status, payment_status_after

# A reservation can expire before inventory hears of the confirmation: the stock is gone, so
# even a CONFIRMED order is cancelled (and its authorization voided).
_EXPIRABLE: frozenset[OrderStatus] = frozenset({"PENDING", "AWAITING_PAYMENT", "CONFIRMED"})
_DISPATCHABLE: frozenset[OrderStatus] = frozenset({"CONFIRMED"})
_DELIVERABLE: frozenset[OrderStatus] = frozenset({"SHIPPED"})
_VOIDABLE: frozenset[OrderStatus] = frozenset({"PENDING", "AWAITING_PAYMENT", "CONFIRMED"})
_CANCELLED: frozenset[OrderStatus] = frozenset({"CANCELLED"})


async def on_stock_reservation_failed(
    *, session: AsyncSession, emit: Emit, envelope: Envelope[inventory.StockReservationFailed]
) -> None:
    event = envelope.data
    await move(
        session,
        emit,
        order_id=event.order_id,
        target="CANCELLED",
        allowed_from=IN_FLIGHT,
        reason=event.reason,
        cause=cause_of(envelope),
        cancel_reason="out_of_stock",
    )


async def on_payment_authorized(
    *, session: AsyncSession, emit: Emit, envelope: Envelope[payments.PaymentAuthorized]
) -> None:
    event, cause = envelope.data, cause_of(envelope)
    order = await orders.lock(session, event.order_id)
    if order is None:
        await ignore(session, None, event.order_id, cause, "unknown order")
        return
    # Payment facts are kept whatever the order's state: a late authorization of a cancelled
    # order is voided by payments, and the order shows it.
    payment_fields = {
        "payment_id": order.payment_id or event.payment_id,
        "authorized_amount": event.amount,
        "payment_status": payment_status_after(order.payment_status, "authorized"),
    }
    status = as_status(order.status)
    if status not in IN_FLIGHT:
        await orders.set_fields(session, order.id, **payment_fields)
        await ignore(session, order, order.id, cause, f"order is {status}, not CONFIRMED-able")
        return
    if event.amount != order.total or event.currency != order.currency:
        # Invariant 1: never confirm without an authorization of exactly the order's total.
        await transition(
            session,
            emit,
            order,
            "CANCELLED",
            cause=cause,
            cancel_reason="payment_failed",
            reason="payment_amount_mismatch",
            fields=payment_fields,
        )
        return
    await transition(
        session,
        emit,
        order,
        "CONFIRMED",
        reason="payment_authorized",
        cause=cause,
        payment_id=event.payment_id,
        review_pending=event.flagged_for_review,
        fields={**payment_fields, "payment_id": event.payment_id},
    )


async def on_payment_review_resolved(
    *, session: AsyncSession, emit: Emit, envelope: Envelope[payments.PaymentReviewResolved]
) -> None:
    """An approved review lets the parcel of a confirmed order go. A rejection needs nothing
    here: payments voids (or refunds) next, and that cancels the order."""
    event, cause = envelope.data, cause_of(envelope)
    if event.decision != "approved":
        return
    order = await orders.lock(session, event.order_id)
    if order is None:
        await ignore(session, None, event.order_id, cause, "unknown order")
        return
    if order.status != "CONFIRMED":
        await ignore(session, order, order.id, cause, f"order is {order.status}, nothing held")
        return
    await emit(
        OrderFulfilmentReleased(order_id=order.id, user_id=order.user_id, released_at=utc_now())
    )


async def on_payment_action_required(
    *, session: AsyncSession, emit: Emit, envelope: Envelope[payments.PaymentActionRequired]
) -> None:
    event, cause = envelope.data, cause_of(envelope)
    order = await orders.lock(session, event.order_id)
    if order is None:
        await ignore(session, None, event.order_id, cause, "unknown order")
        return
    fields = {
        "payment_id": order.payment_id or event.payment_id,
        "payment_next_action": event.next_action.model_dump(mode="json"),
        "payment_status": payment_status_after(order.payment_status, "action_required"),
    }
    if order.status == "AWAITING_PAYMENT":
        # A fresh challenge for the same payment: show the newest next action.
        await orders.set_fields(session, order.id, **fields, updated_at=utc_now())
        return
    if order.status != "PENDING":
        await ignore(
            session, order, order.id, cause, f"order is {order.status}, not waiting for payment"
        )
        return
    await transition(
        session,
        emit,
        order,
        "AWAITING_PAYMENT",
        reason="payment_action_required",
        cause=cause,
        fields=fields,
    )


async def on_payment_failed(
    *, session: AsyncSession, emit: Emit, envelope: Envelope[payments.PaymentFailed]
) -> None:
    event = envelope.data
    await move(
        session,
        emit,
        order_id=event.order_id,
        target="CANCELLED",
        allowed_from=IN_FLIGHT,
        reason=f"payment_{event.reason}",
        cause=cause_of(envelope),
        cancel_reason="payment_failed",
        payment_reported="failed",
        payment_id=event.payment_id,
    )


async def on_stock_released(
    *, session: AsyncSession, emit: Emit, envelope: Envelope[inventory.StockReleased]
) -> None:
    event = envelope.data
    if event.reason != "expired":
        return  # the compensation of a cancellation this service already recorded
    await move(
        session,
        emit,
        order_id=event.order_id,
        target="CANCELLED",
        allowed_from=_EXPIRABLE,
        reason="reservation_expired",
        cause=cause_of(envelope),
        cancel_reason="reservation_expired",
    )


async def on_shipment_dispatched(
    *, session: AsyncSession, emit: Emit, envelope: Envelope[shipping.ShipmentDispatched]
) -> None:
    cause = cause_of(envelope)
    order = await orders.lock(session, envelope.data.order_id)
    if order is None:
        await ignore(session, None, envelope.data.order_id, cause, "unknown order")
        return
    if order.status not in _DISPATCHABLE:
        await ignore(session, order, order.id, cause, f"order is {order.status}, not SHIPPED-able")
        return
    refused = order.cancellation_status == "requested"
    await transition(
        session,
        emit,
        order,
        "SHIPPED",
        # The parcel left before shipping could stop it: the cancellation asked meanwhile is
        # refused, and the payment is captured as for any dispatch.
        reason="dispatched_before_cancellation" if refused else "shipment_dispatched",
        cause=cause,
        fields={"cancellation_status": "refused"} if refused else None,
    )
    if order.payment_status == "refunded":
        # Payments captures on the same dispatch event and may have refunded it in full before
        # this service saw the dispatch (the refund was recorded then, not applied).
        await transition(
            session,
            emit,
            replace(order, status="SHIPPED"),
            "REFUNDED",
            reason="payment_refunded",
            cause=cause,
        )


async def on_shipment_cancelled(
    *, session: AsyncSession, emit: Emit, envelope: Envelope[shipping.ShipmentCancelled]
) -> None:
    """Shipping stopped the parcel a cancellation asked for: the order is cancelled now, and
    payments voids the authorization it never captured. For an order cancelled outright (not
    confirmed yet, or by the saga itself) this is the expected echo and changes nothing."""
    cause = cause_of(envelope)
    order = await orders.lock(session, envelope.data.order_id)
    if order is None:
        await ignore(session, None, envelope.data.order_id, cause, "unknown order")
        return
    if order.status == "CANCELLED":
        return
    if order.status != "CONFIRMED" or order.cancellation_status != "requested":
        await ignore(session, order, order.id, cause, f"order is {order.status}, not cancelling")
        return
    await transition(
        session,
        emit,
        order,
        "CANCELLED",
        reason=order.cancellation_note or "shipment_cancelled",
        cause=Cause(
            event_id=cause.event_id, event_type=cause.event_type, actor=order.cancellation_actor
        ),
        cancel_reason=_cancel_reason(order.cancellation_reason),
        fields={"cancellation_status": "accepted"},
    )


def _cancel_reason(value: str | None) -> CancelReason:
    return "admin_request" if value == "admin_request" else "customer_request"


async def on_shipment_delivered(
    *, session: AsyncSession, emit: Emit, envelope: Envelope[shipping.ShipmentDelivered]
) -> None:
    await move(
        session,
        emit,
        order_id=envelope.data.order_id,
        target="DELIVERED",
        allowed_from=_DELIVERABLE,
        reason="shipment_delivered",
        cause=cause_of(envelope),
    )


async def on_payment_refunded(
    *, session: AsyncSession, emit: Emit, envelope: Envelope[payments.PaymentRefunded]
) -> None:
    event, cause = envelope.data, cause_of(envelope)
    order = await orders.lock(session, event.order_id)
    if order is None:
        await ignore(session, None, event.order_id, cause, "unknown order")
        return
    reported = "refunded" if event.full else "partially_refunded"
    await orders.set_fields(
        session, order.id, payment_status=payment_status_after(order.payment_status, reported)
    )
    if not event.full or order.status in ("CANCELLED", "REFUNDED"):
        return  # a partial refund, or the refund that compensates a cancellation
    if order.status not in ("SHIPPED", "DELIVERED"):
        # CONFIRMED: the dispatch that captured this payment is still on its way here; the
        # payment status just recorded finishes the order when it arrives.
        await ignore(session, order, order.id, cause, f"order is {order.status}, not REFUNDED-able")
        return
    await transition(
        session,
        emit,
        order,
        "REFUNDED",
        reason=event.reason[:STATUS_NOTE_LENGTH] or "payment_refunded",
        cause=cause,
    )


async def on_payment_voided(
    *, session: AsyncSession, emit: Emit, envelope: Envelope[payments.PaymentVoided]
) -> None:
    """Usually the compensation of a cancellation (the order is CANCELLED already). Otherwise
    payments withdrew the authorization itself (a rejected risk review): without it the order
    cannot stay confirmed (invariant 1), so it is cancelled and the stock released."""
    await move(
        session,
        emit,
        order_id=envelope.data.order_id,
        target="CANCELLED",
        allowed_from=_VOIDABLE,
        reason="payment_voided",
        cause=cause_of(envelope),
        cancel_reason="payment_failed",
        payment_reported="voided",
        payment_id=envelope.data.payment_id,
        ignore_when=_CANCELLED,
    )


async def on_payment_settled(*, session: AsyncSession, order_id: str, reported: str) -> None:
    """Capture or void: the payment's state changes, the order's does not."""
    order = await orders.lock(session, order_id)
    if order is not None:
        await orders.set_fields(
            session, order_id, payment_status=payment_status_after(order.payment_status, reported)
        )
