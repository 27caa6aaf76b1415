"""Refunds: compensation of a captured payment, admin partial refunds, and refunds made at the
provider that reach us by webhook."""

from __future__ import annotations

import contextlib
import logging

from contracts.events.payments import PaymentRefunded
from contracts.types import utc_now

from contracts import new_id
from payments_service import repository
from payments_service.errors import (
    NothingToRefundError,
    ProviderRejectedError,
    RefundExceedsCaptureError,
)
from payments_service.models import (
    AttemptStatus,
    PaymentAttempt,
    Refund,
    RefundStatus,
)
from payments_service.provider import Intent, ProviderRefund, RequestRejected
from payments_service.service.transitions import CAPTURED, attempt_key
from payments_service.service.work import Work, detached, provider_write

log = logging.getLogger(__name__)


async def refund(
    work: Work,
    attempt: PaymentAttempt,
    *,
    amount: int | None,
    reason: str,
    request_key: str,
    requested_by: str,
) -> Refund:
    """Refund `amount` (None: all that is left) of a captured attempt, once per `request_key`.

    The attempt's order is locked by the caller, so refunds of one order never race each other
    over what is left to refund.
    """
    existing = await repository.refund_by_request_key(work.session, attempt.order_id, request_key)
    if existing is not None:
        if existing.status == RefundStatus.PENDING:
            await _reconcile_pending(work, attempt)
            if existing.status == RefundStatus.PENDING:
                return await _send(work, attempt, existing)
        return existing
    if attempt.status not in CAPTURED or attempt.provider_payment_id is None:
        raise NothingToRefundError(f"payment {attempt.id} is {attempt.status.value}, not captured")
    for waiting in await _reconcile_pending(work, attempt):
        with contextlib.suppress(ProviderRejectedError):
            await _send(work, attempt, waiting)
    left = attempt.refundable if attempt.status in CAPTURED else 0
    wanted = left if amount is None else amount
    if wanted <= 0 or wanted > left:
        raise RefundExceedsCaptureError(
            f"{left} {attempt.currency} left to refund on payment {attempt.id}", refundable=left
        )
    pending = Refund(
        id=new_id(),
        order_id=attempt.order_id,
        payment_id=attempt.id,
        amount=wanted,
        currency=attempt.currency,
        reason=reason,
        status=RefundStatus.PENDING,
        full=False,
        request_key=request_key,
        requested_by=requested_by,
    )
    pending.idempotency_key = attempt_key(attempt, f"refund:{pending.id}")
    async with detached(work.payments) as session:
        await repository.insert_refund(session, pending)
    created = await repository.refund_by_request_key(work.session, attempt.order_id, request_key)
    assert created is not None
    return await _send(work, attempt, created)


async def refund_rest(
    work: Work, attempt: PaymentAttempt, *, reason: str, request_key: str, requested_by: str
) -> None:
    """Refund all that is still captured on `attempt` (an order cancelled, a review rejected).

    The rest is learnt from the provider first: refunds made there (its dashboard) and ours
    whose answer was lost are counted, and ours never answered are settled, so what is asked
    is exactly what is left. A refusal raises `ProviderRejectedError` rather than leaving the
    rest charged unnoticed: the caller's event is retried, then parked for an operator (a
    disputed charge). Each try has a key of its own, so a refused one is never just replayed.
    """
    assert attempt.provider_payment_id is not None
    intent = await work.payments.provider.retrieve(attempt.provider_payment_id)
    await sync_refunds(work, attempt, intent)
    rows = await settle_pending(work, attempt)
    if attempt.status not in CAPTURED or attempt.refundable <= 0:
        return
    prefix = f"{request_key}:{attempt.number}:"
    # Every earlier try counts, not only the refused ones: one recorded as refused may turn out
    # made (sync_refunds), and its key must not be taken for the next try.
    tries = sum(1 for row in rows if (row.request_key or "").startswith(prefix))
    await refund(
        work,
        attempt,
        amount=None,
        reason=reason,
        request_key=f"{prefix}{tries}",
        requested_by=requested_by,
    )


async def _reconcile_pending(work: Work, attempt: PaymentAttempt) -> list[Refund]:
    """Count what the provider already made of the attempt's unanswered refunds before any is
    sent again: its idempotency key lasts 24 hours (Stripe), so a row older than that resent
    blindly would be a second refund, not the first one's replay. Nothing is asked of the
    provider when no refund waits for an answer.

    Returns the refunds still waiting for an answer after that count."""
    rows = await repository.refunds_of_attempt(work.session, attempt.id)
    if attempt.provider_payment_id is None or not any(
        row.status == RefundStatus.PENDING for row in rows
    ):
        return []
    intent = await work.payments.provider.retrieve(attempt.provider_payment_id)
    await sync_refunds(work, attempt, intent)
    return [row for row in rows if row.status == RefundStatus.PENDING]


async def settle_pending(work: Work, attempt: PaymentAttempt) -> list[Refund]:
    """Finish the attempt's refunds whose answer never came (a crash or a timeout after the
    row was written). Until then their amounts are neither refunded nor free to refund again;
    each is sent again under its own key, so the provider makes it now or answers with the one
    it already made. One it refuses is recorded as failed, and its amount is free again.
    Callers count the provider's refunds first (`sync_refunds`), so that no row is resent
    after the provider has forgotten its key.

    Returns the attempt's refunds as they now stand."""
    rows = await repository.refunds_of_attempt(work.session, attempt.id)
    for row in rows:
        if row.status == RefundStatus.PENDING:
            with contextlib.suppress(ProviderRejectedError):
                await _send(work, attempt, row)
    return rows


async def _send(work: Work, attempt: PaymentAttempt, pending: Refund) -> Refund:
    assert pending.idempotency_key is not None
    assert attempt.provider_payment_id is not None
    provider = work.payments.provider
    key = pending.idempotency_key
    try:
        result = await provider_write(
            work,
            key=key,
            operation="refund",
            order_id=attempt.order_id,
            payment_id=attempt.id,
            refund_id=pending.id,
            request={
                "intent": attempt.provider_payment_id,
                "amount": pending.amount,
                "metadata": {
                    "refund_id": pending.id,
                    "order_id": attempt.order_id,
                    "payment_id": attempt.id,
                },
            },
            send=lambda r: provider.refund(
                r["intent"], amount=r["amount"], metadata=r["metadata"], idempotency_key=key
            ),
            response_id=lambda refund: refund.id,
        )
    except RequestRejected as exc:
        # Recorded apart from the caller's transaction, which is about to fail.
        async with detached(work.payments) as session:
            failed = await session.get(Refund, pending.id)
            assert failed is not None
            failed.status = RefundStatus.FAILED
            failed.failure_message = exc.message
            failed.completed_at = utc_now()
        pending.status = RefundStatus.FAILED
        raise ProviderRejectedError(exc.message, refund_id=pending.id) from exc
    await _succeeded(work, attempt, pending, result)
    return pending


async def _succeeded(
    work: Work, attempt: PaymentAttempt, refund_row: Refund, result: ProviderRefund
) -> None:
    refund_row.status = RefundStatus.SUCCEEDED
    refund_row.provider_refund_id = result.id
    refund_row.amount = result.amount or refund_row.amount
    refund_row.failure_message = None
    refund_row.completed_at = utc_now()
    attempt.amount_refunded += refund_row.amount
    attempt.status = (
        AttemptStatus.REFUNDED if attempt.refundable <= 0 else AttemptStatus.PARTIALLY_REFUNDED
    )
    refund_row.full = attempt.refundable <= 0
    assert attempt.provider_payment_id is not None
    await work.emit(
        PaymentRefunded(
            order_id=attempt.order_id,
            payment_id=attempt.id,
            refund_id=refund_row.id,
            provider_payment_id=attempt.provider_payment_id,
            provider_refund_id=result.id,
            amount=refund_row.amount,
            currency=refund_row.currency,
            full=refund_row.full,
            reason=refund_row.reason,
            refunded_at=refund_row.completed_at,
        )
    )


async def sync_refunds(work: Work, attempt: PaymentAttempt, intent: Intent) -> bool:
    """Record refunds the provider reports and we have not counted: ours whose answer was lost
    (a crash after the call), ours recorded as refused although the provider made them (a
    refusal read from a transient answer, before 409s were known to be transient) and ones
    made elsewhere (the provider's dashboard)."""
    if intent.id != attempt.provider_payment_id:
        return False  # another intent's refunds are not this attempt's
    if attempt.status not in CAPTURED or intent.amount_refunded <= attempt.amount_refunded:
        return False
    ours = {r.id: r for r in await repository.refunds_of_attempt(work.session, attempt.id)}
    known = {r.provider_refund_id for r in ours.values() if r.provider_refund_id}
    changed = False
    for found in sorted(await work.payments.provider.refunds(intent.id), key=lambda r: r.id):
        if found.status != "succeeded" or found.id in known:
            continue
        mine = ours.get(found.metadata.get("refund_id", ""))
        if mine is not None and mine.status in (RefundStatus.PENDING, RefundStatus.FAILED):
            # A failed row the provider names was made all the same: the provider's word is
            # what the customer got back.
            await _succeeded(work, attempt, mine, found)
        elif mine is None:
            row = Refund(
                id=new_id(),
                order_id=attempt.order_id,
                payment_id=attempt.id,
                amount=found.amount,
                currency=found.currency or attempt.currency,
                reason="refunded_at_provider",
                status=RefundStatus.PENDING,
                full=False,
                request_key=f"provider:{found.id}",
                requested_by="provider",
            )
            await repository.insert_refund(work.session, row)
            await _succeeded(work, attempt, row, found)
        else:
            continue
        changed = True
        if attempt.refundable <= 0:
            break
    return changed
