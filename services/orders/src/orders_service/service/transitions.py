"""The order state machine applied: guarded transitions, history, and the events they cause.

A transition locks the order row, checks that it fits the order's current status, and either
applies it (status, history row, events in the outbox, all in the caller's transaction) or
records the event as ignored. Nothing ever moves backwards, so duplicated, replayed or reordered
events leave the same final state.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from contracts.events.orders import (
    CancelReason,
    OrderCancellationRequested,
    OrderCancelled,
    OrderConfirmed,
    OrderLine,
    OrderStatus,
    OrderStatusChanged,
    ShippingAddress,
    ShippingChoice,
)
from contracts.types import utc_now
from shopkit.outbox import Outbox
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope, Event
from orders_service.models import messaging
from orders_service.repository import coupons, orders
from orders_service.repository.orders import LockedOrder, StatusChange
from orders_service.service import coupons as coupon_service
from orders_service.state import as_status, can_transition, payment_status_after

log = logging.getLogger(__name__)

REASK_AFTER = timedelta(minutes=5)
"""How long shipping may leave a cancellation request unanswered before asking it again is
worth it: it answers within seconds when it has the shipment."""


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
    review_pending: bool = False,
    fields: dict[str, Any] | None = None,
) -> None:
    """Apply one allowed transition (the caller checked it fits) with all its consequences.

    `review_pending`: confirmed on a payment flagged for review (shipping holds the parcel)."""
    now = utc_now()
    current = as_status(order.status)
    values: dict[str, Any] = dict(fields or {})
    if cancel_reason is not None:
        values["cancel_reason"] = cancel_reason
    if target == "CANCELLED" and order.cancellation_status == "requested":
        # Cancelled by whatever came first (shipping's answer, an expired reservation, a
        # withdrawn payment): the request is fulfilled either way, not left open forever.
        values.setdefault("cancellation_status", "accepted")
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
                subtotal=order.subtotal,
                discount=order.discount,
                shipping=order.shipping,
                coupon_code=order.coupon_code,
                payment_review_pending=review_pending,
            )
        )
    elif target == "CANCELLED":
        assert cancel_reason is not None
        if order.coupon_code is not None and await coupons.release(
            session, order_id=order.id, now=now
        ):
            # Released once (this transition happens once per order); the use goes back to
            # the coupon after the commit, so this transaction never locks the coupon row.
            coupon_service.give_back_uses_after_commit(session)
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


async def cancel_or_request(
    session: AsyncSession,
    emit: Emit,
    order: LockedOrder,
    *,
    reason: CancelReason,
    note: str,
    cause: Cause,
    actor: str,
) -> None:
    """Cancel an order its customer may still cancel (the caller checked its status). Not yet
    confirmed: at once (payments voids, inventory releases). CONFIRMED: its parcel may be
    leaving at this moment and only shipping knows, so shipping is asked to stop it; the order
    stays CONFIRMED until it answers with ShipmentCancelled or ShipmentDispatched (saga.py).
    Asked again while shipping decides: nothing more is sent, unless shipping has stayed silent
    for `REASK_AFTER` (it had no shipment to stop yet: its OrderConfirmed was parked), when the
    request is sent again; shipping answers a repeated request once."""
    if order.status != "CONFIRMED":
        await transition(
            session,
            emit,
            order,
            "CANCELLED",
            reason=note,
            cause=cause,
            cancel_reason=reason,
        )
        return
    now = utc_now()
    if order.cancellation_status is not None:
        asked = order.cancellation_requested_at
        if order.cancellation_status == "requested" and asked and now - asked > REASK_AFTER:
            log.warning(
                "cancellation request unanswered; asking shipping again",
                extra={"order_id": order.id},
            )
            await emit(
                OrderCancellationRequested(
                    order_id=order.id, user_id=order.user_id, reason=reason, requested_at=asked
                )
            )
        return
    await orders.set_fields(
        session,
        order.id,
        cancellation_status="requested",
        cancellation_reason=reason,
        cancellation_note=note,
        cancellation_actor=actor,
        cancellation_requested_at=now,
        updated_at=now,
    )
    await emit(
        OrderCancellationRequested(
            order_id=order.id, user_id=order.user_id, reason=reason, requested_at=now
        )
    )


async def ignore(
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


async def move(
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
        await ignore(session, None, order_id, cause, "unknown order")
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
            await ignore(session, order, order_id, cause, f"order is {status}, not {target}-able")
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


def cause_of(envelope: Envelope[Event]) -> Cause:
    return Cause(event_id=envelope.id, event_type=envelope.type)
