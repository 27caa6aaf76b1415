"""Payments' part of the checkout saga. Events of one order arrive on several topics in no
guaranteed order; each is recorded on the order's row (locked) and acted on once the order
has what the action needs."""

from __future__ import annotations

import logging

from contracts.events.inventory import StockReserved
from contracts.events.orders import OrderCancelled, OrderPlaced
from contracts.events.shipping import ShipmentDispatched

from payments_service import repository
from payments_service.models import AttemptStatus, PaymentOrder, ReviewStatus
from payments_service.service.authorization import authorize
from payments_service.service.refunds import refund_rest
from payments_service.service.transitions import CAPTURED, VOIDABLE, capture, void
from payments_service.service.work import Work

log = logging.getLogger(__name__)


async def order_placed(work: Work, *, event: OrderPlaced, correlation_id: str) -> None:
    order = await repository.lock_order(work.session, event.order_id)
    if order.is_placed:
        return
    order.user_id = event.user_id
    order.amount = event.total
    order.currency = event.currency
    order.payment_method_id = event.payment_method_id
    if not await repository.ERASURES.hold(work.session, event.user_id):
        # Not for an account erased meanwhile (its order is being cancelled).
        order.customer_ip = event.customer_ip
        order.shipping_country = event.shipping_address.country
    order.placed_at = event.placed_at
    order.correlation_id = order.correlation_id or correlation_id
    await authorize(work, order)


async def stock_reserved(work: Work, *, event: StockReserved, correlation_id: str) -> None:
    order = await repository.lock_order(work.session, event.order_id)
    if order.reservation_id == event.reservation_id:
        return
    if order.reservation_id is not None:
        log.info(
            "second reservation for an order; keeping the first",
            extra={"order_id": event.order_id, "reservation_id": event.reservation_id},
        )
        return
    order.reservation_id = event.reservation_id
    order.reservation_expires_at = event.expires_at
    order.correlation_id = order.correlation_id or correlation_id
    await authorize(work, order)


async def order_cancelled(work: Work, *, event: OrderCancelled, correlation_id: str) -> None:
    """Compensate: void what is authorized (or awaiting 3DS), refund what is captured. Only
    this order's attempts are touched. An attempt whose answer is still unknown is voided by
    whoever learns the answer, since the order is now marked cancelled."""
    order = await repository.lock_order(work.session, event.order_id)
    if order.is_cancelled:
        return
    order.cancelled_at = event.cancelled_at
    order.cancel_reason = event.reason
    order.user_id = order.user_id or event.user_id
    order.correlation_id = order.correlation_id or correlation_id
    await compensate(work, order, reason=event.reason, request_key="order-cancelled")


async def compensate(work: Work, order: PaymentOrder, *, reason: str, request_key: str) -> None:
    for attempt in await repository.attempts_of(work.session, order.order_id):
        if attempt.status in VOIDABLE and attempt.status != AttemptStatus.PENDING:
            await void(work, order, attempt, reason=reason)
        if attempt.status in CAPTURED:
            await refund_rest(
                work, attempt, reason=reason, request_key=request_key, requested_by="system"
            )


async def shipment_dispatched(work: Work, *, event: ShipmentDispatched) -> None:
    order = await repository.lock_order(work.session, event.order_id)
    if order.dispatched_at is None:
        order.dispatched_at = event.dispatched_at
    if order.is_cancelled:
        log.warning(
            "shipment dispatched for a cancelled order; not capturing",
            extra={"order_id": event.order_id},
        )
        return
    for attempt in await repository.attempts_of(work.session, order.order_id):
        if attempt.status != AttemptStatus.AUTHORIZED:
            continue
        if attempt.review_status == ReviewStatus.REJECTED:
            continue
        await capture(work, order, attempt)
