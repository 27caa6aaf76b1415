"""The attempt state machine: a provider snapshot moves an attempt forward, never back, and each
transition emits its event exactly once.

Whoever learns something about an intent (the synchronous confirm, a webhook, a sweep, a
compensation) calls `apply_intent` with the attempt's order locked, so two of them racing for
the same intent serialise and the second finds the work done.

    pending -> requires_action -> authorized -> captured -> partially_refunded -> refunded
       \\______________\\______________\\-> voided           (failed from pending/requires_action)
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from contracts.events.payments import (
    NextAction,
    PaymentActionRequired,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentFailed,
    PaymentVoided,
)
from contracts.types import utc_now

from payments_service import repository
from payments_service.models import (
    AttemptStatus,
    CallStatus,
    PaymentAttempt,
    PaymentOrder,
    ReviewStatus,
)
from payments_service.provider import Intent, RequestRejected
from payments_service.service.work import Work, provider_write

log = logging.getLogger(__name__)

OPEN = (AttemptStatus.PENDING, AttemptStatus.REQUIRES_ACTION)
"""Waiting on the provider or the customer: nothing authorized yet."""
VOIDABLE = (AttemptStatus.PENDING, AttemptStatus.REQUIRES_ACTION, AttemptStatus.AUTHORIZED)
CAPTURED = (AttemptStatus.CAPTURED, AttemptStatus.PARTIALLY_REFUNDED)

_STRIPE_CANCELLATION_REASONS = {
    "customer_request": "requested_by_customer",
    "reservation_expired": "abandoned",
    "payment_action_abandoned": "abandoned",
    "risk_review_rejected": "fraudulent",
}


def attempt_key(attempt: PaymentAttempt, operation: str) -> str:
    """The idempotency key of one business operation on one attempt of one order."""
    return f"order:{attempt.order_id}:attempt:{attempt.number}:{operation}"


async def apply_intent(
    work: Work, order: PaymentOrder, attempt: PaymentAttempt, intent: Intent
) -> bool:
    """Bring the attempt up to the provider's state; True if it moved."""
    if attempt.provider_payment_id is None:
        attempt.provider_payment_id = intent.id
        if attempt.idempotency_key:
            # Learnt from a webhook or a re-fetch rather than the call's own answer (lost to a
            # timeout): the recorded call did act, and produced this intent.
            await repository.finish_call(
                work.session,
                attempt.idempotency_key,
                status=CallStatus.SUCCEEDED,
                response_id=intent.id,
                only_pending=True,
            )
    elif attempt.provider_payment_id != intent.id:
        log.error(
            "intent does not belong to this attempt",
            extra={
                "payment_id": attempt.id,
                "intent": intent.id,
                "attempt_intent": attempt.provider_payment_id,
            },
        )
        return False
    attempt.provider_status = intent.status
    if attempt.status == AttemptStatus.FAILED and intent.status == "requires_capture":
        # Confirmed again after it failed (a retry in a browser that kept the client secret):
        # the order is over, so nothing may stay held on the card.
        log.warning(
            "a failed payment was authorized later; releasing it",
            extra={"payment_id": attempt.id, "intent": intent.id},
        )
        await _cancel_intent(work, attempt, reason="payment_failed")
        return False
    if attempt.status in (AttemptStatus.FAILED, AttemptStatus.VOIDED):
        return False
    before = attempt.status
    match intent.status:
        case "requires_action" if attempt.status == AttemptStatus.PENDING:
            await _requires_action(work, order, attempt, intent)
        case "requires_capture" if attempt.status in OPEN:
            await _authorized(work, order, attempt, intent)
        case "succeeded" if attempt.status in VOIDABLE:
            if attempt.status in OPEN:
                await _authorized(work, order, attempt, intent)
            if attempt.status == AttemptStatus.AUTHORIZED:
                await _captured(work, attempt, intent)
        case "canceled" if attempt.status in OPEN and not order.is_cancelled:
            # Cancelled at the provider before it was ever authorized: for the order this is a
            # failed payment (nothing to compensate), not a void.
            await fail(
                work,
                attempt,
                reason="action_abandoned" if intent.cancellation_reason == "abandoned" else "error",
                decline_code=intent.cancellation_reason,
                message="the payment was cancelled at the payment provider",
            )
        case "canceled" if attempt.status in VOIDABLE:
            await _voided(work, attempt, reason=_cancel_reason(order, intent))
        case "requires_payment_method" if attempt.status in OPEN:
            challenged = attempt.status == AttemptStatus.REQUIRES_ACTION
            error = intent.last_error
            await fail(
                work,
                attempt,
                reason="declined",
                decline_code=(error.decline_code or error.code) if error else None,
                message=error.message if error else "the payment method was refused",
            )
            if challenged:
                # The customer's browser still holds the intent's client secret and may confirm
                # it again; the order is cancelled on this failure, so the intent is closed.
                await _cancel_intent(work, attempt, reason="payment_failed")
    return attempt.status != before


async def fail(
    work: Work,
    attempt: PaymentAttempt,
    *,
    reason: str,
    decline_code: str | None,
    message: str | None,
) -> None:
    attempt.status = AttemptStatus.FAILED
    attempt.failure_reason = reason
    attempt.decline_code = decline_code
    attempt.failure_message = message
    attempt.failed_at = utc_now()
    attempt.next_action = None
    await work.emit(
        PaymentFailed(
            order_id=attempt.order_id,
            payment_id=attempt.id,
            provider_payment_id=attempt.provider_payment_id,
            reason=reason,  # type: ignore[arg-type]
            decline_code=decline_code,
            message=message,
            failed_at=attempt.failed_at,
        )
    )


async def void(work: Work, order: PaymentOrder, attempt: PaymentAttempt, *, reason: str) -> None:
    """Cancel the attempt's intent at the provider (compensation for an uncaptured payment)."""
    if attempt.status not in VOIDABLE or attempt.provider_payment_id is None:
        return
    intent = await _cancel_intent(work, attempt, reason=reason)
    if intent.status == "canceled" and attempt.status in VOIDABLE:
        attempt.provider_status = intent.status
        await _voided(work, attempt, reason=reason)
    else:
        await apply_intent(work, order, attempt, intent)


async def _cancel_intent(work: Work, attempt: PaymentAttempt, *, reason: str) -> Intent:
    assert attempt.provider_payment_id is not None
    intent_id = attempt.provider_payment_id
    provider = work.payments.provider
    # Each void the provider refused gets a key of its own for the next one: Stripe replays a
    # saved 4xx answer for 24 hours, so a later void under the same key (the intent
    # cancellable by then) would only get the old refusal back. An unanswered one is resent
    # under its own key, as every write is. The first try keeps the plain `void` key.
    refused = await repository.refused_calls(
        work.session, order_id=attempt.order_id, payment_id=attempt.id, operation="void"
    )
    key = attempt_key(attempt, f"void:{refused}" if refused else "void")
    try:
        return await provider_write(
            work,
            key=key,
            operation="void",
            order_id=attempt.order_id,
            payment_id=attempt.id,
            request={"intent": intent_id, "reason": _STRIPE_CANCELLATION_REASONS.get(reason)},
            send=lambda r: provider.cancel(r["intent"], reason=r["reason"], idempotency_key=key),
            response_id=lambda i: i.id,
        )
    except RequestRejected:
        # Not cancellable any more (captured, or cancelled elsewhere): learn what it is now.
        return await provider.retrieve(intent_id)


async def capture(work: Work, order: PaymentOrder, attempt: PaymentAttempt) -> None:
    if attempt.status != AttemptStatus.AUTHORIZED or attempt.provider_payment_id is None:
        return
    intent_id = attempt.provider_payment_id
    provider = work.payments.provider
    key = attempt_key(attempt, "capture")
    try:
        intent = await provider_write(
            work,
            key=key,
            operation="capture",
            order_id=attempt.order_id,
            payment_id=attempt.id,
            request={"intent": intent_id, "amount": attempt.amount},
            send=lambda r: provider.capture(r["intent"], amount=r["amount"], idempotency_key=key),
            response_id=lambda i: i.id,
        )
    except RequestRejected:
        intent = await provider.retrieve(intent_id)
    await apply_intent(work, order, attempt, intent)


def next_action_of(attempt: PaymentAttempt) -> NextAction | None:
    data = attempt.next_action
    if not data:
        return None
    return NextAction(
        type=str(data.get("type") or "use_stripe_sdk"),
        redirect_url=data.get("redirect_url"),
        client_secret=data.get("client_secret"),
    )


async def _requires_action(
    work: Work, order: PaymentOrder, attempt: PaymentAttempt, intent: Intent
) -> None:
    attempt.status = AttemptStatus.REQUIRES_ACTION
    action = intent.action
    attempt.next_action = {
        "type": action.type if action else "use_stripe_sdk",
        "redirect_url": action.redirect_url if action else None,
        "client_secret": action.client_secret if action else None,
    }
    if order.is_cancelled or attempt.review_status == ReviewStatus.REJECTED:
        # The order ended (or an admin rejected the payment) while the confirm was in flight:
        # nobody must be asked to complete this challenge.
        await void(work, order, attempt, reason=order.cancel_reason or "risk_review_rejected")
        return
    next_action = next_action_of(attempt)
    assert next_action is not None
    await work.emit(
        PaymentActionRequired(
            order_id=attempt.order_id,
            payment_id=attempt.id,
            provider_payment_id=intent.id,
            next_action=next_action,
            amount=attempt.amount,
            currency=attempt.currency,
        )
    )


async def _authorized(
    work: Work, order: PaymentOrder, attempt: PaymentAttempt, intent: Intent
) -> None:
    if intent.amount != attempt.amount or intent.currency != attempt.currency:
        # Invariant: an order is confirmed only by an authorization of exactly its total.
        log.error(
            "authorized amount differs from the order total",
            extra={
                "payment_id": attempt.id,
                "intent_amount": intent.amount,
                "amount": attempt.amount,
            },
        )
        await _cancel_intent(work, attempt, reason="amount_mismatch")
        await fail(
            work,
            attempt,
            reason="error",
            decline_code=None,
            message="the authorized amount differs from the order total",
        )
        return
    attempt.status = AttemptStatus.AUTHORIZED
    attempt.authorized_at = utc_now()
    attempt.next_action = None
    if order.is_cancelled or attempt.review_status == ReviewStatus.REJECTED:
        await void(work, order, attempt, reason=order.cancel_reason or "risk_review_rejected")
        return
    await work.emit(
        PaymentAuthorized(
            order_id=attempt.order_id,
            payment_id=attempt.id,
            provider_payment_id=intent.id,
            amount=attempt.amount,
            currency=attempt.currency,
            flagged_for_review=attempt.awaiting_review,
            authorized_at=attempt.authorized_at,
        )
    )


async def _captured(work: Work, attempt: PaymentAttempt, intent: Intent) -> None:
    if intent.amount_received != attempt.amount:
        # Captured for less (or more) than authorized: captured elsewhere (the dashboard) for
        # another amount. What was received is recorded and announced, never the order's
        # total; the difference shows in the reconcile report (`partial_capture`) for a human.
        log.error(
            "captured amount differs from the authorized amount",
            extra={
                "order_id": attempt.order_id,
                "payment_id": attempt.id,
                "intent": intent.id,
                "amount": attempt.amount,
                "amount_received": intent.amount_received,
            },
        )
    attempt.status = AttemptStatus.CAPTURED
    attempt.amount_captured = intent.amount_received
    attempt.captured_at = utc_now()
    await work.emit(
        PaymentCaptured(
            order_id=attempt.order_id,
            payment_id=attempt.id,
            provider_payment_id=intent.id,
            amount=attempt.amount_captured,
            currency=attempt.currency,
            captured_at=attempt.captured_at,
        )
    )


async def _voided(work: Work, attempt: PaymentAttempt, *, reason: str) -> None:
    attempt.status = AttemptStatus.VOIDED
    attempt.voided_at = datetime.now(UTC)
    attempt.next_action = None
    assert attempt.provider_payment_id is not None
    await work.emit(
        PaymentVoided(
            order_id=attempt.order_id,
            payment_id=attempt.id,
            provider_payment_id=attempt.provider_payment_id,
            amount=attempt.amount,
            currency=attempt.currency,
            reason=reason,
            voided_at=attempt.voided_at,
        )
    )


def _cancel_reason(order: PaymentOrder, intent: Intent) -> str:
    if order.cancel_reason:
        return order.cancel_reason
    return f"canceled_at_provider:{intent.cancellation_reason or 'unspecified'}"
