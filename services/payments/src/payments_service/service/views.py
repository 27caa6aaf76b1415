"""What the HTTP API shows: an order's payments, refunds and risk reviews."""

from __future__ import annotations

from collections import defaultdict

from shopkit.security import Principal
from sqlalchemy.ext.asyncio import AsyncSession

from payments_service import repository
from payments_service.errors import PaymentNotFoundError
from payments_service.models import (
    AttemptStatus,
    PaymentAttempt,
    PaymentOrder,
    Refund,
    ReviewStatus,
)
from payments_service.schemas import (
    AttemptPublic,
    NextActionPublic,
    OrderPaymentsPublic,
    PaymentsExport,
    RefundPublic,
    ReviewList,
    ReviewPublic,
    RiskPublic,
)
from payments_service.service.transitions import CAPTURED


async def order_payments(
    *, session: AsyncSession, order_id: str, principal: Principal
) -> OrderPaymentsPublic:
    """The order's payments, for its owner or an admin; anyone else learns nothing (404)."""
    order = await repository.get_order(session, order_id)
    if order is None or not (
        principal.is_admin or (order.user_id and order.user_id == principal.user_id)
    ):
        raise PaymentNotFoundError(f"no payment known for order {order_id}")
    attempts = await repository.attempts_of(session, order_id)
    refunds = await repository.refunds_of_order(session, order_id)
    return _order_payments(order, attempts, refunds, admin=principal.is_admin)


async def export(*, session: AsyncSession, principal: Principal) -> PaymentsExport:
    """The payments of the caller's orders (ownership as for `order_payments`: the order's
    user from OrderPlaced); a user with none gets an empty list."""
    orders = await repository.orders_of_user(session, principal.user_id)
    ids = [order.order_id for order in orders]
    attempts: dict[str, list[PaymentAttempt]] = defaultdict(list)
    for attempt in await repository.attempts_of_orders(session, ids):
        attempts[attempt.order_id].append(attempt)
    refunds: dict[str, list[Refund]] = defaultdict(list)
    for refund in await repository.refunds_of_orders(session, ids):
        refunds[refund.order_id].append(refund)
    exported = []
    for order in orders:
        payments = _order_payments(order, attempts[order.order_id], refunds[order.order_id])
        for shown in payments.attempts:
            shown.next_action = None
        exported.append(payments)
    return PaymentsExport(user_id=principal.user_id, orders=exported)


def _order_payments(
    order: PaymentOrder,
    attempts: list[PaymentAttempt],
    refunds: list[Refund],
    *,
    admin: bool = False,
) -> OrderPaymentsPublic:
    latest = attempts[-1] if attempts else None
    return OrderPaymentsPublic(
        order_id=order.order_id,
        user_id=order.user_id,
        status=latest.status.value
        if latest
        else ("cancelled" if order.is_cancelled else "awaiting_order"),
        amount=order.amount,
        currency=order.currency,
        amount_authorized=sum(
            a.amount for a in attempts if a.authorized_at and a.status != AttemptStatus.VOIDED
        ),
        amount_captured=sum(a.amount_captured for a in attempts),
        amount_refunded=sum(a.amount_refunded for a in attempts),
        attempts=[attempt_public(a, admin=admin) for a in attempts],
        refunds=[refund_public(r) for r in refunds],
    )


def attempt_public(attempt: PaymentAttempt, *, admin: bool) -> AttemptPublic:
    action = attempt.next_action
    return AttemptPublic(
        payment_id=attempt.id,
        number=attempt.number,
        status=attempt.status.value,
        amount=attempt.amount,
        currency=attempt.currency,
        amount_captured=attempt.amount_captured,
        amount_refunded=attempt.amount_refunded,
        provider_payment_id=attempt.provider_payment_id,
        card_brand=attempt.card_brand,
        card_last4=attempt.card_last4,
        next_action=NextActionPublic.model_validate(action) if action else None,
        failure_reason=attempt.failure_reason,
        decline_code=attempt.decline_code,
        failure_message=attempt.failure_message,
        flagged_for_review=attempt.flagged_for_review,
        authorized_at=attempt.authorized_at,
        captured_at=attempt.captured_at,
        voided_at=attempt.voided_at,
        failed_at=attempt.failed_at,
        created_at=attempt.created_at,
        risk=RiskPublic(
            score=attempt.risk_score,
            level=attempt.risk_level,
            reasons=list(attempt.risk_reasons),
            review_status=attempt.review_status.value,
            reviewed_by=attempt.reviewed_by,
            reviewed_at=attempt.reviewed_at,
            review_note=attempt.review_note,
        )
        if admin
        else None,
    )


def refund_public(refund: Refund) -> RefundPublic:
    return RefundPublic(
        refund_id=refund.id,
        payment_id=refund.payment_id,
        amount=refund.amount,
        currency=refund.currency,
        reason=refund.reason,
        status=refund.status.value,
        full=refund.full,
        provider_refund_id=refund.provider_refund_id,
        requested_by=refund.requested_by,
        failure_message=refund.failure_message,
        created_at=refund.created_at,
        completed_at=refund.completed_at,
    )


async def review_list(
    *, session: AsyncSession, status: ReviewStatus | None, limit: int, cursor: str | None
) -> ReviewList:
    rows = await repository.reviews(session, status=status, limit=limit + 1, before=cursor)
    page = rows[:limit]
    return ReviewList(
        items=[review_public(a) for a in page],
        next_cursor=page[-1].id if len(rows) > limit else None,
    )


def review_public(attempt: PaymentAttempt) -> ReviewPublic:
    return ReviewPublic(
        payment_id=attempt.id,
        order_id=attempt.order_id,
        user_id=attempt.user_id,
        status=attempt.status.value,
        amount=attempt.amount,
        currency=attempt.currency,
        risk_score=attempt.risk_score,
        risk_level=attempt.risk_level,
        reasons=list(attempt.risk_reasons),
        review_status=attempt.review_status.value,
        card_country=attempt.card_country,
        reviewed_by=attempt.reviewed_by,
        reviewed_at=attempt.reviewed_at,
        review_note=attempt.review_note,
        created_at=attempt.created_at,
    )


def captured_attempt(attempts: list[PaymentAttempt]) -> PaymentAttempt | None:
    return next((a for a in reversed(attempts) if a.status in CAPTURED), None)
