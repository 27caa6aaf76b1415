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
    PaymentOrder,
    Refund,
    RefundStatus,
    ReviewStatus,
)
from payments_service.provider import Intent, ProviderRefund, RequestRejected
from payments_service.service.transitions import CAPTURED, attempt_key
from payments_service.service.work import Work, detached, provider_write

log = logging.getLogger(__name__)

REJECTED_REASON = "risk_review_rejected"
"""Why the money of a payment rejected in review goes back (its void or refund)."""

SUCCEEDED = "succeeded"
"""The only provider refund status that means the money went back to the customer."""
FAILED_AT_PROVIDER = frozenset({"failed", "canceled"})
"""Final refusals. Any other status (`pending`, `requires_action`) is a refund the provider made
but has not settled yet: it is neither counted nor announced until it succeeds (its webhook
`charge.refund.updated` / `refund.updated`, or the next `sync_refunds`)."""


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
            if _unanswered(existing):
                return await _send(work, attempt, existing)
        return existing
    if attempt.status not in CAPTURED or attempt.provider_payment_id is None:
        raise NothingToRefundError(f"payment {attempt.id} is {attempt.status.value}, not captured")
    for waiting in await _reconcile_pending(work, attempt):
        with contextlib.suppress(ProviderRejectedError):
            await _send(work, attempt, waiting)
    left = await _free_to_refund(work, attempt)
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
    if await _free_to_refund(work, attempt) <= 0:
        # Nothing left, or the rest is a refund the provider is still settling.
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


async def refund_what_is_owed(work: Work, order: PaymentOrder, attempt: PaymentAttempt) -> None:
    """Refund the rest of a payment whose money must go back (its order cancelled, its review
    rejected) once the provider has said a refund of it failed.

    A compensation's refund the provider answered as pending ends the compensation as done:
    the cancellation is handled, and nothing else would ever try again when the provider later
    reports the refund failed, leaving a cancelled order charged. The provider's word starts the
    next try here, under the compensation's own key with the next number (`refund_rest`); a
    refusal of that try raises, and the webhook carrying the news is retried, then left for an
    operator, as a refused compensation is."""
    if attempt.status not in CAPTURED:
        return
    if order.is_cancelled:
        reason, request_key = order.cancel_reason or "order_cancelled", "order-cancelled"
    elif attempt.review_status == ReviewStatus.REJECTED:
        reason, request_key = REJECTED_REASON, "review-rejected"
    else:
        return
    if await _free_to_refund(work, attempt) <= 0:
        return
    log.error(
        "a compensation refund failed at the provider; refunding the rest again",
        extra={"order_id": attempt.order_id, "payment_id": attempt.id},
    )
    await refund_rest(work, attempt, reason=reason, request_key=request_key, requested_by="system")


async def _reconcile_pending(work: Work, attempt: PaymentAttempt) -> list[Refund]:
    """Count what the provider already made of the attempt's unanswered refunds before any is
    sent again: its idempotency key lasts 24 hours (Stripe), so a row older than that resent
    blindly would be a second refund, not the first one's replay. Nothing is asked of the
    provider when no refund waits for an answer.

    Returns the refunds still waiting for an answer after that count (not the ones the
    provider answered as still pending: those are settled by its word, never sent again)."""
    rows = await repository.refunds_of_attempt(work.session, attempt.id)
    if attempt.provider_payment_id is None or not any(
        row.status == RefundStatus.PENDING for row in rows
    ):
        return []
    intent = await work.payments.provider.retrieve(attempt.provider_payment_id)
    await sync_refunds(work, attempt, intent)
    return [row for row in rows if _unanswered(row)]


def _unanswered(row: Refund) -> bool:
    """Pending because no answer was recorded (a crash, a timeout): safe to send again under
    its key. A row pending with the provider's id is one the provider made and is settling."""
    return row.status == RefundStatus.PENDING and row.provider_refund_id is None


async def _free_to_refund(work: Work, attempt: PaymentAttempt) -> int:
    """What may still be asked: the captured rest, less refunds the provider is settling (a
    pending refund that later succeeds must not find its amount refunded twice)."""
    if attempt.status not in CAPTURED:
        return 0
    rows = await repository.refunds_of_attempt(work.session, attempt.id)
    settling = sum(
        row.amount
        for row in rows
        if row.status == RefundStatus.PENDING and row.provider_refund_id is not None
    )
    return attempt.refundable - settling


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
        if _unanswered(row):
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
        await _refused(work, pending, message=exc.message, provider_refund_id=None)
        raise ProviderRejectedError(exc.message, refund_id=pending.id) from exc
    if result.status == SUCCEEDED:
        await _succeeded(work, attempt, pending, result)
    elif result.status in FAILED_AT_PROVIDER:
        message = _failure_message(result)
        await _refused(work, pending, message=message, provider_refund_id=result.id)
        raise ProviderRejectedError(message, refund_id=pending.id)
    else:
        # Made but not settled: the provider's id marks it as answered (never resent), and its
        # amount stays out of what is refunded and out of what may still be refunded.
        log.info(
            "refund pending at the provider",
            extra={"order_id": attempt.order_id, "refund_id": pending.id, "status": result.status},
        )
        pending.provider_refund_id = result.id
        pending.amount = result.amount or pending.amount
    return pending


async def _refused(
    work: Work, pending: Refund, *, message: str, provider_refund_id: str | None
) -> None:
    # Recorded apart from the caller's transaction, which is about to fail.
    async with detached(work.payments) as session:
        failed = await session.get(Refund, pending.id)
        assert failed is not None
        failed.status = RefundStatus.FAILED
        failed.provider_refund_id = provider_refund_id
        failed.failure_message = message
        failed.completed_at = utc_now()
    pending.status = RefundStatus.FAILED
    pending.provider_refund_id = provider_refund_id


def _failure_message(result: ProviderRefund) -> str:
    return f"the refund {result.status} at the payment provider" + (
        f" ({result.failure_reason})" if result.failure_reason else ""
    )


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
    """Bring the attempt's refunds up to the provider's word: count those it reports succeeded
    that we have not counted (ours whose answer was lost or was still pending, ours recorded as
    refused although the provider made them, and ones made elsewhere, e.g. its dashboard),
    fail ours it reports failed, and take back a counted one that failed afterwards."""
    if intent.id != attempt.provider_payment_id:
        return False  # another intent's refunds are not this attempt's
    if attempt.status not in (*CAPTURED, AttemptStatus.REFUNDED):
        return False
    rows = await repository.refunds_of_attempt(work.session, attempt.id)
    settling = any(row.status == RefundStatus.PENDING for row in rows)
    if intent.amount_refunded == attempt.amount_refunded and not settling:
        return False  # nothing to learn: spare the provider a listing on every webhook
    by_id = {r.id: r for r in rows}
    by_provider_id = {r.provider_refund_id: r for r in rows if r.provider_refund_id}
    changed = False
    # Failures first: an amount a failed refund gives back may be what a success found later
    # in the same listing needs to be counted.
    listed = await work.payments.provider.refunds(intent.id)
    for found in sorted(listed, key=lambda r: (r.status == SUCCEEDED, r.id)):
        mine = by_provider_id.get(found.id) or by_id.get(found.metadata.get("refund_id", ""))
        if found.status in FAILED_AT_PROVIDER:
            if mine is None or mine.status == RefundStatus.FAILED:
                continue  # never counted: nothing to undo
            if mine.status == RefundStatus.SUCCEEDED:
                _reversed(attempt, mine, found)
            else:
                mine.status = RefundStatus.FAILED
                mine.provider_refund_id = found.id
                mine.failure_message = _failure_message(found)
                mine.completed_at = utc_now()
        elif found.status == SUCCEEDED:
            if attempt.status not in CAPTURED or attempt.refundable <= 0:
                continue
            if mine is not None and mine.status in (RefundStatus.PENDING, RefundStatus.FAILED):
                # A failed row the provider names was made all the same: the provider's word is
                # what the customer got back.
                await _succeeded(work, attempt, mine, found)
            elif mine is None:
                await _succeeded(work, attempt, await _made_elsewhere(work, attempt, found), found)
            else:
                continue
        else:
            if mine is not None and _unanswered(mine):
                mine.provider_refund_id = found.id  # answered at last: settled by its webhook
            elif mine is None:
                # Made elsewhere and still settling: recorded, so that its amount is not asked
                # for again meanwhile (the provider would refuse more than the charge), and
                # counted once it succeeds.
                await _made_elsewhere(work, attempt, found)
            continue
        changed = True
    return changed


async def _made_elsewhere(work: Work, attempt: PaymentAttempt, found: ProviderRefund) -> Refund:
    """Record, pending, a refund made at the provider (its dashboard) that has no row of ours."""
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
        provider_refund_id=found.id,
    )
    await repository.insert_refund(work.session, row)
    return row


def _reversed(attempt: PaymentAttempt, row: Refund, found: ProviderRefund) -> None:
    """A refund counted (and announced) as succeeded failed afterwards (Stripe: the customer's
    bank refused it): the money is charged again. The contracts have no event to take back a
    PaymentRefunded, so this is recorded and logged for an operator."""
    log.error(
        "a refund failed at the provider after it had succeeded; its amount is charged again",
        extra={
            "order_id": attempt.order_id,
            "payment_id": attempt.id,
            "refund_id": row.id,
            "provider_refund_id": found.id,
            "amount": row.amount,
            "provider_status": found.status,
        },
    )
    row.status = RefundStatus.FAILED
    row.failure_message = _failure_message(found) + " after it had succeeded"
    row.full = False
    attempt.amount_refunded -= row.amount
    attempt.status = (
        AttemptStatus.PARTIALLY_REFUNDED if attempt.amount_refunded > 0 else AttemptStatus.CAPTURED
    )
