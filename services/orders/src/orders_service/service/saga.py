"""The order state machine applied: guarded transitions, history, and the events they cause.

Every reaction loads the order under a row lock, checks that the transition fits the order's
current status, and either applies it (status, history row, events in the outbox, all in the
caller's transaction) or records the event as ignored. Nothing ever moves backwards, so
duplicated, replayed or reordered events leave the same final state.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from contracts.events import inventory, payments, shipping
from contracts.events.orders import (
    CancelReason,
    OrderCancelled,
    OrderConfirmed,
    OrderLine,
    OrderStatus,
    OrderStatusChanged,
    ShippingAddress,
    ShippingChoice,
)
from shopkit.outbox import Outbox
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope, Event
from orders_service.models import messaging
from orders_service.repository import coupons, orders
from orders_service.repository.orders import LockedOrder, StatusChange
from orders_service.state import IN_FLIGHT, as_status, can_transition, payment_status_after

log = logging.getLogger(__name__)

# A reservation can expire before inventory hears of the confirmation: the stock is gone, so
# even a CONFIRMED order is cancelled (and its authorization voided).
_EXPIRABLE: frozenset[OrderStatus] = frozenset({"PENDING", "AWAITING_PAYMENT", "CONFIRMED"})
_DISPATCHABLE: frozenset[OrderStatus] = frozenset({"CONFIRMED"})
_DELIVERABLE: frozenset[OrderStatus] = frozenset({"SHIPPED"})
_VOIDABLE: frozenset[OrderStatus] = frozenset({"PENDING", "AWAITING_PAYMENT", "CONFIRMED"})
_CANCELLED: frozenset[OrderStatus] = frozenset({"CANCELLED"})


class Emit(Protocol):
    """Writes events to the outbox in the caller's transaction."""

    async def __call__(self, *events: Event) -> None: ...


class RequestEmitter:
    """Emit for API requests: the events continue the order's flow (correlation = order id)."""

    def __init__(self, session: AsyncSession, correlation_id: str) -> None:
        self._outbox = Outbox(session, messaging.outbox)
        self._correlation_id = correlation_id

    async def __call__(self, *events: Event) -> None:
        await self._outbox.add(
            *(Envelope(data=e, correlation_id=self._correlation_id) for e in events)
        )


@dataclass(frozen=True, slots=True)
class Cause:
    """Why a transition happens: an event, or a person's request."""

    event_id: str | None = None
    event_type: str | None = None
    actor: str | None = None


def _now() -> datetime:
    return datetime.now(UTC)


async def transition(
    session: AsyncSession,
    emit: Emit,
    order: LockedOrder,
    target: OrderStatus,
    *,
    reason: str,
    cause: Cause,
    cancel_reason: CancelReason | None = None,
    payment_id: str | None = None,
    fields: dict[str, Any] | None = None,
) -> None:
    """Apply one allowed transition (the caller checked it fits) with all its consequences."""
    now = _now()
    current = as_status(order.status)
    values: dict[str, Any] = dict(fields or {})
    if cancel_reason is not None:
        values["cancel_reason"] = cancel_reason
    await orders.change_status(
        session,
        order.id,
        StatusChange(
            from_status=current,
            to_status=target,
            reason=reason,
            at=now,
            event_id=cause.event_id,
            event_type=cause.event_type,
            actor=cause.actor,
        ),
        **values,
    )
    events: list[Event] = []
    if target == "CONFIRMED":
        assert payment_id is not None
        events.append(
            OrderConfirmed(
                order_id=order.id,
                user_id=order.user_id,
                payment_id=payment_id,
                lines=[OrderLine.model_validate(line) for line in order.lines],
                total=order.total,
                currency=order.currency,
                shipping_address=ShippingAddress.model_validate(order.shipping_address),
                shipping_choice=ShippingChoice.model_validate(order.shipping_choice),
                confirmed_at=now,
            )
        )
    elif target == "CANCELLED":
        assert cancel_reason is not None
        # The coupon use goes back exactly once: this transition happens once per order.
        await coupons.release(session, order_id=order.id, now=now)
        events.append(
            OrderCancelled(
                order_id=order.id,
                user_id=order.user_id,
                reason=cancel_reason,
                previous_status=current,
                cancelled_at=now,
            )
        )
    events.append(
        OrderStatusChanged(
            order_id=order.id,
            user_id=order.user_id,
            from_status=current,
            to_status=target,
            reason=reason,
            changed_at=now,
        )
    )
    await emit(*events)


async def _ignore(
    session: AsyncSession, order: LockedOrder | None, order_id: str, cause: Cause, why: str
) -> None:
    log.info(
        "event ignored by the order state machine",
        extra={
            "order_id": order_id,
            "event_id": cause.event_id,
            "ce_type": cause.event_type,
            "why": why,
        },
    )
    if cause.event_id is not None and cause.event_type is not None:
        await orders.record_ignored(
            session,
            order_id=order_id,
            event_id=cause.event_id,
            event_type=cause.event_type,
            order_status=order.status if order else None,
            reason=why,
        )


async def _move(
    session: AsyncSession,
    emit: Emit,
    *,
    order_id: str,
    target: OrderStatus,
    allowed_from: Collection[OrderStatus],
    reason: str,
    cause: Cause,
    cancel_reason: CancelReason | None = None,
    payment_reported: str | None = None,
    payment_id: str | None = None,
    ignore_when: Collection[OrderStatus] = (),
) -> bool:
    """Lock the order and apply the transition if it fits; otherwise record the event (unless
    the order is in one of `ignore_when`, where the event is expected and changes nothing).
    `payment_reported` updates the payment status either way."""
    order = await orders.lock(session, order_id)
    if order is None:
        await _ignore(session, None, order_id, cause, "unknown order")
        return False
    fields: dict[str, Any] = {}
    if payment_reported is not None:
        fields["payment_status"] = payment_status_after(order.payment_status, payment_reported)
    if payment_id is not None and order.payment_id is None:
        fields["payment_id"] = payment_id
    status = as_status(order.status)
    if status not in allowed_from or not can_transition(status, target):
        if fields:
            await orders.set_fields(session, order_id, **fields)
        if status not in ignore_when:
            await _ignore(session, order, order_id, cause, f"order is {status}, not {target}-able")
        return False
    await transition(
        session,
        emit,
        order,
        target,
        reason=reason,
        cause=cause,
        cancel_reason=cancel_reason,
        fields=fields,
    )
    return True


def _cause(envelope: Envelope[Event]) -> Cause:
    return Cause(event_id=envelope.id, event_type=envelope.type)


async def on_stock_reservation_failed(
    *, session: AsyncSession, emit: Emit, envelope: Envelope[inventory.StockReservationFailed]
) -> None:
    event = envelope.data
    await _move(
        session,
        emit,
        order_id=event.order_id,
        target="CANCELLED",
        allowed_from=IN_FLIGHT,
        reason=event.reason,
        cause=_cause(envelope),
        cancel_reason="out_of_stock",
    )


async def on_payment_authorized(
    *, session: AsyncSession, emit: Emit, envelope: Envelope[payments.PaymentAuthorized]
) -> None:
    event, cause = envelope.data, _cause(envelope)
    order = await orders.lock(session, event.order_id)
    if order is None:
        await _ignore(session, None, event.order_id, cause, "unknown order")
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
        await _ignore(session, order, order.id, cause, f"order is {status}, not CONFIRMED-able")
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
        fields={**payment_fields, "payment_id": event.payment_id},
    )


async def on_payment_action_required(
    *, session: AsyncSession, emit: Emit, envelope: Envelope[payments.PaymentActionRequired]
) -> None:
    event, cause = envelope.data, _cause(envelope)
    order = await orders.lock(session, event.order_id)
    if order is None:
        await _ignore(session, None, event.order_id, cause, "unknown order")
        return
    fields = {
        "payment_id": order.payment_id or event.payment_id,
        "payment_next_action": event.next_action.model_dump(mode="json"),
        "payment_status": payment_status_after(order.payment_status, "action_required"),
    }
    if order.status == "AWAITING_PAYMENT":
        # A fresh challenge for the same payment: show the newest next action.
        await orders.set_fields(session, order.id, **fields, updated_at=_now())
        return
    if order.status != "PENDING":
        await _ignore(
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
    await _move(
        session,
        emit,
        order_id=event.order_id,
        target="CANCELLED",
        allowed_from=IN_FLIGHT,
        reason=f"payment_{event.reason}",
        cause=_cause(envelope),
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
    await _move(
        session,
        emit,
        order_id=event.order_id,
        target="CANCELLED",
        allowed_from=_EXPIRABLE,
        reason="reservation_expired",
        cause=_cause(envelope),
        cancel_reason="reservation_expired",
    )


async def on_shipment_dispatched(
    *, session: AsyncSession, emit: Emit, envelope: Envelope[shipping.ShipmentDispatched]
) -> None:
    await _move(
        session,
        emit,
        order_id=envelope.data.order_id,
        target="SHIPPED",
        allowed_from=_DISPATCHABLE,
        reason="shipment_dispatched",
        cause=_cause(envelope),
    )


async def on_shipment_delivered(
    *, session: AsyncSession, emit: Emit, envelope: Envelope[shipping.ShipmentDelivered]
) -> None:
    await _move(
        session,
        emit,
        order_id=envelope.data.order_id,
        target="DELIVERED",
        allowed_from=_DELIVERABLE,
        reason="shipment_delivered",
        cause=_cause(envelope),
    )


async def on_payment_refunded(
    *, session: AsyncSession, emit: Emit, envelope: Envelope[payments.PaymentRefunded]
) -> None:
    event, cause = envelope.data, _cause(envelope)
    order = await orders.lock(session, event.order_id)
    if order is None:
        await _ignore(session, None, event.order_id, cause, "unknown order")
        return
    reported = "refunded" if event.full else "partially_refunded"
    await orders.set_fields(
        session, order.id, payment_status=payment_status_after(order.payment_status, reported)
    )
    if not event.full or order.status in ("CANCELLED", "REFUNDED"):
        return  # a partial refund, or the refund that compensates a cancellation
    if order.status != "DELIVERED":
        await _ignore(
            session, order, order.id, cause, f"order is {order.status}, not REFUNDED-able"
        )
        return
    await transition(
        session,
        emit,
        order,
        "REFUNDED",
        reason=event.reason[:80] or "payment_refunded",
        cause=cause,
    )


async def on_payment_voided(
    *, session: AsyncSession, emit: Emit, envelope: Envelope[payments.PaymentVoided]
) -> None:
    """Usually the compensation of a cancellation (the order is CANCELLED already). Otherwise
    payments withdrew the authorization itself (a rejected risk review): without it the order
    cannot stay confirmed (invariant 1), so it is cancelled and the stock released."""
    await _move(
        session,
        emit,
        order_id=envelope.data.order_id,
        target="CANCELLED",
        allowed_from=_VOIDABLE,
        reason="payment_voided",
        cause=_cause(envelope),
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
