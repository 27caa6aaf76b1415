"""Admin actions: partial refunds with a reason, and resolving payments flagged for review."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from contracts.events.payments import PaymentReviewResolved
from contracts.types import utc_now
from shopkit.security import Principal
from sqlalchemy.ext.asyncio import AsyncSession

from payments_service import repository
from payments_service.errors import (
    IdempotencyKeyRequiredError,
    IdempotencyKeyReusedError,
    NothingToRefundError,
    PaymentNotFoundError,
    ProviderUnavailableError,
    ReviewAlreadyResolvedError,
    ReviewNotFoundError,
)
from payments_service.models import AttemptStatus, PaymentOrder, ReviewStatus
from payments_service.provider import ProviderUnavailable
from payments_service.runtime import Payments, outbox_emitter
from payments_service.schemas import RefundCreate, RefundPublic, ReviewPublic, ReviewResolve
from payments_service.service.refunds import REJECTED_REASON, refund, refund_rest
from payments_service.service.transitions import CAPTURED, VOIDABLE, void
from payments_service.service.views import captured_attempt, refund_public, review_public
from payments_service.service.work import Work


async def refund_order(
    *,
    session: AsyncSession,
    payments: Payments,
    order_id: str,
    body: RefundCreate,
    idempotency_key: str | None,
    admin: Principal,
) -> RefundPublic:
    """Refund part of an order's captured payment; the same Idempotency-Key returns the same
    refund instead of a second one."""
    if not idempotency_key:
        raise IdempotencyKeyRequiredError("send an Idempotency-Key header with each refund")
    if await repository.get_order(session, order_id) is None:
        raise PaymentNotFoundError(f"no payment known for order {order_id}")
    order = await repository.lock_order(session, order_id)
    attempts = await repository.attempts_of(session, order_id)
    # The key's refund is looked up first: once it has refunded everything, no attempt is
    # "captured" any more, and a retry must still get that refund back.
    request_key = f"admin:{idempotency_key}"
    existing = await repository.refund_by_request_key(session, order_id, request_key)
    payment_id = body.payment_id or (existing.payment_id if existing is not None else None)
    if payment_id is not None:
        attempt = next((a for a in attempts if a.id == payment_id), None)
        if attempt is None:
            raise PaymentNotFoundError(f"order {order_id} has no payment {payment_id}")
    else:
        attempt = captured_attempt(attempts)
        if attempt is None:
            raise NothingToRefundError(f"order {order_id} has no captured payment")
    if existing is not None and (existing.amount, existing.reason, existing.payment_id) != (
        body.amount,
        body.reason,
        attempt.id,
    ):
        raise IdempotencyKeyReusedError("this Idempotency-Key was used for another refund")
    async with _provider_errors():
        done = await refund(
            _work(session, payments, order),
            attempt,
            amount=body.amount,
            reason=body.reason,
            request_key=request_key,
            requested_by=admin.user_id,
        )
    return refund_public(done)


async def resolve_review(
    *,
    session: AsyncSession,
    payments: Payments,
    payment_id: str,
    body: ReviewResolve,
    admin: Principal,
) -> ReviewPublic:
    """Approve a flagged payment, or reject it: a rejected payment is voided (or refunded if
    already captured) and never captured afterwards."""
    found = await repository.get_attempt(session, payment_id)
    if found is None or found.review_status == ReviewStatus.NONE:
        raise ReviewNotFoundError(f"payment {payment_id} is not under review")
    order = await repository.lock_order(session, found.order_id)
    attempt = await repository.get_attempt(session, payment_id)
    assert attempt is not None
    if attempt.review_status != ReviewStatus.PENDING:
        raise ReviewAlreadyResolvedError(
            f"payment {payment_id} was already {attempt.review_status.value}"
        )
    approve = body.decision == "approve"
    attempt.review_status = ReviewStatus.APPROVED if approve else ReviewStatus.REJECTED
    attempt.reviewed_by = admin.user_id
    attempt.reviewed_at = utc_now()
    attempt.review_note = body.note
    work = _work(session, payments, order)
    # An order confirmed under review keeps its parcel until this says it may go.
    await work.emit(
        PaymentReviewResolved(
            order_id=attempt.order_id,
            payment_id=attempt.id,
            decision="approved" if approve else "rejected",
            resolved_at=attempt.reviewed_at,
        )
    )
    if not approve:
        async with _provider_errors():
            if attempt.status in VOIDABLE and attempt.status != AttemptStatus.PENDING:
                await void(work, order, attempt, reason=REJECTED_REASON)
            # Not `elif`: the void may find the intent already captured (a capture whose answer
            # was lost) and record it so; then it is refunded.
            if attempt.status in CAPTURED:
                await refund_rest(
                    work,
                    attempt,
                    reason=REJECTED_REASON,
                    request_key="review-rejected",
                    requested_by=admin.user_id,
                )
    return review_public(attempt)


def _work(session: AsyncSession, payments: Payments, order: PaymentOrder) -> Work:
    return Work(
        session=session,
        payments=payments,
        emit=outbox_emitter(session, correlation_id=order.correlation_id, causation_id=None),
    )


@asynccontextmanager
async def _provider_errors() -> AsyncIterator[None]:
    try:
        yield
    except ProviderUnavailable as exc:
        raise ProviderUnavailableError(str(exc)) from exc
