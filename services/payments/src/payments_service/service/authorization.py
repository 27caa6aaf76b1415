"""Authorizing an order: risk checks, then one manual-capture PaymentIntent for exactly the
order total, confirmed at once."""

from __future__ import annotations

import logging
from datetime import timedelta

from contracts.types import utc_now

from contracts import new_id
from payments_service import repository
from payments_service.models import (
    AttemptStatus,
    PaymentAttempt,
    PaymentOrder,
    ProviderCall,
    ReviewStatus,
)
from payments_service.provider import (
    AuthorizeRequest,
    CardDetails,
    Intent,
    PaymentDeclined,
    RequestRejected,
)
from payments_service.risk import RiskLevel, RiskSubject
from payments_service.service.transitions import apply_intent, attempt_key, fail
from payments_service.service.work import Work, detached, provider_write

log = logging.getLogger(__name__)

IDEMPOTENCY_WINDOW = timedelta(hours=23)
"""Stripe forgets idempotency keys after 24 h; an authorization resent later than this looks
for the intent its first request may have made before sending again."""


async def authorize(work: Work, order: PaymentOrder) -> None:
    """Authorize the order's payment once its total and its stock reservation are both known.

    The order is locked by the caller. Safe to run again: an attempt that already has an
    answer is left alone, and one still pending resends its recorded request.
    """
    if not order.is_placed or order.reservation_id is None or order.is_cancelled:
        return
    expires_at = order.reservation_expires_at
    if expires_at is not None and expires_at <= utc_now():
        # Payments caught up after the hold on the stock ended: the units may be another
        # order's now, and inventory's expiry cancels this one. Authorizing would hold the card
        # for an order that cannot be confirmed (or worse, confirm it on stock it lost).
        log.warning(
            "reservation expired before its authorization", extra={"order_id": order.order_id}
        )
        return
    attempts = await repository.attempts_of(work.session, order.order_id)
    attempt = next((a for a in attempts if a.reservation_id == order.reservation_id), None)
    call: ProviderCall | None = None
    if attempt is None:
        if any(a.status not in (AttemptStatus.FAILED, AttemptStatus.VOIDED) for a in attempts):
            return  # an earlier attempt already pays for this order
        opened = await _open_attempt(work, order, number=len(attempts) + 1)
        if opened is None:
            return
        attempt, call = opened
    if attempt.status == AttemptStatus.PENDING:
        await send_authorization(work, order, attempt, call=call)


async def _adopt_made_intent(work: Work, order: PaymentOrder, attempt: PaymentAttempt) -> bool:
    """Find the intent the attempt's request made (by its payment id, in the metadata) and
    bring the attempt up to it; False when the request made none."""
    made = await work.payments.provider.intent_for_payment(attempt.id)
    if made is None:
        return False
    await apply_intent(work, order, attempt, made)
    return True


async def settle_unanswered(work: Work, order: PaymentOrder, attempt: PaymentAttempt) -> None:
    """End an attempt whose order was cancelled before its request was answered, without
    sending it: a first send now would put a hold on the card for an order that is over. An
    intent the request did make is found and released; otherwise the attempt fails. (Should the
    provider's search lag behind an intent that exists, its authorization notice finds a
    failed attempt and releases the hold then: transitions.apply_intent.)"""
    if await _adopt_made_intent(work, order, attempt):
        return
    await fail(
        work,
        attempt,
        reason="error",
        decline_code=None,
        message="the order was cancelled before the authorization was sent",
    )


async def send_authorization(
    work: Work, order: PaymentOrder, attempt: PaymentAttempt, *, call: ProviderCall | None = None
) -> None:
    """Send (or resend, under the same key) the attempt's recorded authorization request.

    `call`: its committed record when the caller just wrote it (saves reading it back)."""
    assert attempt.idempotency_key is not None
    provider = work.payments.provider
    key = attempt.idempotency_key
    # Past the window the provider has forgotten the key: a resend would be a new request, and
    # would make a second intent if the first one did act. Look for that intent first.
    if utc_now() - attempt.created_at >= IDEMPOTENCY_WINDOW and await _adopt_made_intent(
        work, order, attempt
    ):
        return
    if call is None:
        call = await repository.get_call(work.session, key)
    if call is None:
        raise RuntimeError(f"attempt {attempt.id} has no recorded authorization request")
    try:
        intent = await provider_write(
            work,
            key=key,
            operation="authorize",
            order_id=order.order_id,
            payment_id=attempt.id,
            request=call.request,
            send=lambda r: provider.authorize(
                AuthorizeRequest.model_validate(r), idempotency_key=key
            ),
            response_id=lambda i: i.id,
            # Recorded and committed before this attempt could be sent at all (_open_attempt).
            committed=call,
        )
    except PaymentDeclined as exc:
        await _declined(work, order, attempt, exc)
        return
    except RequestRejected as exc:
        await fail(work, attempt, reason="error", decline_code=exc.code, message=exc.message)
        return
    if attempt.provider_payment_id is None:
        # The call's own answer, which provider_write has just recorded as succeeded.
        attempt.provider_payment_id = intent.id
    await apply_intent(work, order, attempt, intent)


async def _declined(
    work: Work, order: PaymentOrder, attempt: PaymentAttempt, exc: PaymentDeclined
) -> None:
    if exc.intent is not None:
        intent: Intent = exc.intent
        attempt.provider_payment_id = attempt.provider_payment_id or intent.id
        attempt.provider_status = intent.status
    if attempt.status in (AttemptStatus.PENDING, AttemptStatus.REQUIRES_ACTION):
        await fail(
            work,
            attempt,
            reason="declined",
            decline_code=exc.decline_code or exc.code,
            message=exc.message,
        )


async def _open_attempt(
    work: Work, order: PaymentOrder, *, number: int
) -> tuple[PaymentAttempt, ProviderCall] | None:
    """Score the attempt and record it with its request (committed: returns the attempt in the
    caller's session and the call's record); None when it ended before any call."""
    assert order.user_id
    assert order.amount is not None
    assert order.currency
    assert order.payment_method_id
    payments = work.payments
    # The card's fingerprint and country, and the risk reasons quoting them, are personal data.
    erased = await repository.ERASURES.hold(work.session, order.user_id)
    attempt = PaymentAttempt(
        id=new_id(),
        order_id=order.order_id,
        number=number,
        user_id=order.user_id,
        reservation_id=order.reservation_id,
        status=AttemptStatus.PENDING,
        amount=order.amount,
        currency=order.currency,
        amount_captured=0,
        amount_refunded=0,
        payment_method_id=order.payment_method_id,
        review_status=ReviewStatus.NONE,
        risk_score=0,
        risk_level=RiskLevel.LOW.value,
        risk_reasons=[],
    )
    try:
        card = await payments.provider.card_details(order.payment_method_id)
    except RequestRejected as exc:
        await repository.insert_attempt(work.session, attempt)
        await fail(
            work,
            attempt,
            reason="declined",
            decline_code=exc.code or "invalid_payment_method",
            message=exc.message,
        )
        return None
    _remember_card(attempt, card, identifying=not erased)

    risk = await payments.risk.assess(
        RiskSubject(
            attempt_key=f"{order.order_id}:{number}",
            user_id=order.user_id,
            customer_ip=order.customer_ip,
            card=card,
            amount=order.amount,
            shipping_country=order.shipping_country,
        )
    )
    attempt.risk_score = risk.score
    attempt.risk_level = risk.level.value
    attempt.risk_reasons = [] if erased else list(risk.reasons)
    if risk.level == RiskLevel.HIGH:
        log.info(
            "payment declined by risk checks",
            extra={"order_id": order.order_id, "score": risk.score, "reasons": risk.reasons},
        )
        await repository.insert_attempt(work.session, attempt)
        # The reasons stay internal (admin view); telling a fraudster which rule fired helps him.
        await fail(
            work,
            attempt,
            reason="risk",
            decline_code=None,
            message="the payment was declined by risk checks",
        )
        return None
    if risk.level == RiskLevel.MEDIUM:
        attempt.review_status = ReviewStatus.PENDING

    attempt.idempotency_key = attempt_key(attempt, "authorize")
    request = AuthorizeRequest(
        amount=order.amount,
        currency=order.currency,
        payment_method=order.payment_method_id,
        metadata={
            "order_id": order.order_id,
            "payment_id": attempt.id,
            "attempt": str(number),
            "shop_namespace": payments.settings.provider_namespace,
        },
    )
    # Committed before the call: whatever happens next, a retry finds this attempt and resends
    # the same request under the same key.
    async with detached(payments) as session:
        await repository.record_attempt(session, attempt)
        call = await repository.record_call(
            session,
            key=attempt.idempotency_key,
            operation="authorize",
            order_id=order.order_id,
            payment_id=attempt.id,
            request=request.model_dump(mode="json"),
            new_key=True,  # it names the attempt inserted just above
        )
    recorded = await repository.get_attempt(work.session, attempt.id)
    assert recorded is not None
    return recorded, call


def _remember_card(attempt: PaymentAttempt, card: CardDetails, *, identifying: bool) -> None:
    if identifying:
        attempt.card_fingerprint = card.fingerprint
        attempt.card_country = card.country
    attempt.card_brand = card.brand
    attempt.card_last4 = card.last4
