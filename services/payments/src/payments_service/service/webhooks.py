"""Stripe webhooks: verified on the raw body and stored under the Stripe event id before the
2xx answer; processed afterwards, oldest first, one order at a time.

The event only says *that* something happened: the intent is re-fetched from the provider and
the attempt brought up to that state, so a late, replayed or reordered event cannot move an
attempt backwards. Events about intents this service does not know (other deployments or test
runs sharing the account) are acknowledged and ignored.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from contracts.ids import is_uuid7
from contracts.types import utc_now
from shopkit.transient import is_transient
from sqlalchemy.ext.asyncio import AsyncSession

from payments_service import repository
from payments_service.errors import InvalidWebhookError
from payments_service.models import AttemptStatus, PaymentAttempt, StripeEvent
from payments_service.provider import InvalidWebhook
from payments_service.runtime import Payments, outbox_emitter
from payments_service.service.refunds import refund_what_is_owed, sync_refunds
from payments_service.service.transitions import OPEN, apply_intent
from payments_service.service.work import Work

log = logging.getLogger(__name__)

HANDLED = frozenset(
    {
        "payment_intent.amount_capturable_updated",
        "payment_intent.succeeded",
        "payment_intent.requires_action",
        "payment_intent.payment_failed",
        "payment_intent.canceled",
        "payment_intent.processing",
        "charge.refunded",
        "charge.captured",
        "charge.refund.updated",
        # A refund's later settlement (pending -> succeeded or failed) is told by these too.
        "refund.updated",
        "refund.failed",
    }
)


NO_NEWS_ONCE_AUTHORIZED = "payment_intent.amount_capturable_updated"
"""Says an intent was authorized: nothing new for an attempt already past pending (statuses
only move forward; a later cancel or capture comes with an event of its own)."""

_MAX_BACKOFF_SECONDS = 300

_NEWS_FOR = (*OPEN, AttemptStatus.FAILED)
"""Attempts for which an authorization is news: a failed one authorized after all (confirmed
again from the browser) has a hold to release."""


@dataclass(frozen=True, slots=True)
class Receipt:
    event_id: str
    duplicate: bool
    queued: bool
    """Stored for the processor (not a duplicate, nor settled when received)."""


async def receive(
    *, session: AsyncSession, payments: Payments, payload: bytes, signature: str | None
) -> Receipt:
    try:
        event = payments.provider.verify_webhook(payload, signature)
    except InvalidWebhook as exc:
        raise InvalidWebhookError(str(exc)) from exc
    payment_id = event.payment_id if event.payment_id and is_uuid7(event.payment_id) else None
    values: dict[str, object] = {
        "event_id": event.id,
        "type": event.type,
        "provider_created_at": event.created,
        "payment_intent_id": event.payment_intent_id,
        "payment_id": payment_id,
        "payload": event.payload,
        "attempts": 0,
    }
    known = None
    if event.type == NO_NEWS_ONCE_AUTHORIZED and event.payment_intent_id is not None:
        known = await repository.attempt_progress(session, event.payment_intent_id)
    if known is not None and known.status not in _NEWS_FOR:
        # The authorization this event announces is already recorded (the confirm's own answer
        # came first, as it usually does): the event is stored as processed, with the outcome
        # the processor would give it, instead of queueing it for a lock and a re-fetch.
        stale = known.provider_event_at is not None and event.created < known.provider_event_at
        values.update(processed_at=utc_now(), outcome="stale" if stale else "noop")
        if await repository.ERASURES.hold(session, known.user_id):
            # Settled already, so nothing will scrub it later: the erasure's scrub ran before.
            values["payload"] = dict(repository.REMOVED_PAYLOAD)
    stored = await repository.store_webhook(session, values)
    if stored and known is not None and "outcome" in values:
        await repository.note_provider_event(session, known.id, at=event.created)
    return Receipt(
        event_id=event.id, duplicate=not stored, queued=stored and "outcome" not in values
    )


async def process_next(payments: Payments) -> bool:
    """Process the oldest waiting event; False when none is waiting."""
    async with payments.sessionmaker() as session, session.begin():
        event = await repository.next_webhook(session, utc_now())
        if event is None:
            return False
        try:
            async with session.begin_nested():
                outcome = await _process(session, payments, event)
        except Exception as exc:
            event.last_error = repr(exc)[:2000]
            now = utc_now()
            if is_transient(exc):
                # The provider (or our database) is away: the event is fine and is retried
                # until it is back, never abandoned (provider.ProviderUnavailable). The wait
                # grows with how long the event has waited so far (so it doubles over an
                # outage), with the same cap.
                waited = (now - event.received_at).total_seconds()
                event.next_attempt_at = now + timedelta(
                    seconds=min(max(2**event.attempts, waited), _MAX_BACKOFF_SECONDS)
                )
                log.warning(
                    "webhook processing met an outage, will retry",
                    extra={"event_id": event.event_id, "error": repr(exc)},
                )
                return True
            event.attempts += 1
            if event.attempts >= payments.settings.webhook_max_attempts:
                log.error(
                    "webhook processing abandoned",
                    extra={"event_id": event.event_id, "error": repr(exc)},
                )
                event.processed_at = utc_now()
                event.outcome = "failed"
                await _forget_if_erased(session, event)
            else:
                log.warning(
                    "webhook processing failed, will retry",
                    extra={
                        "event_id": event.event_id,
                        "attempt": event.attempts,
                        "error": repr(exc),
                    },
                )
                event.next_attempt_at = now + timedelta(
                    seconds=min(2**event.attempts, _MAX_BACKOFF_SECONDS)
                )
            return True
        event.processed_at = utc_now()
        event.outcome = outcome
        await _forget_if_erased(session, event)
        return True


async def _process(session: AsyncSession, payments: Payments, event: StripeEvent) -> str:
    if event.type not in HANDLED or event.payment_intent_id is None:
        return "ignored"
    attempt = await _attempt_for(session, event)
    if attempt is None:
        return "unknown"
    order = await repository.lock_order(session, attempt.order_id)
    reloaded = await repository.get_attempt(session, attempt.id)
    assert reloaded is not None
    attempt = reloaded
    if (
        attempt.provider_event_at is not None
        and event.provider_created_at < attempt.provider_event_at
    ):
        return "stale"
    if (
        event.type == NO_NEWS_ONCE_AUTHORIZED
        and attempt.status not in _NEWS_FOR
        and attempt.provider_payment_id == event.payment_intent_id
    ):
        # The authorization this event announces is already recorded (the confirm's own answer
        # came first, as it usually does): the event is no news, and asking the provider again
        # could only repeat it. Later changes of the intent come with events of their own.
        _seen(attempt, event)
        return "noop"
    work = Work(
        session=session,
        payments=payments,
        emit=outbox_emitter(
            session, correlation_id=order.correlation_id, causation_id=event.event_id
        ),
    )
    # Where order matters the event's snapshot is not trusted: ask the provider what is true now.
    intent = await payments.provider.retrieve(event.payment_intent_id)
    moved = await apply_intent(work, order, attempt, intent)
    refunded = await sync_refunds(work, attempt, intent)
    if refunded:
        await refund_what_is_owed(work, order, attempt)
    _seen(attempt, event)
    return "applied" if moved or refunded else "noop"


async def _forget_if_erased(session: AsyncSession, event: StripeEvent) -> None:
    """Drop the provider's copy (billing details, the card's fingerprint) of a processed event
    whose payment belongs to an erased account. The erasure's scrub only reaches events
    processed by then; one that arrives later (the compensation's own charge.refunded or
    payment_intent.canceled) or was still waiting is scrubbed here. Holding the account keeps
    an erasure running now from missing this row: it scrubs after this transaction ends."""
    if event.payment_intent_id is None:
        return
    attempt = await _attempt_for(session, event)
    if attempt is not None and await repository.ERASURES.hold(session, attempt.user_id):
        event.payload = dict(repository.REMOVED_PAYLOAD)


def _seen(attempt: PaymentAttempt, event: StripeEvent) -> None:
    attempt.provider_event_at = max(
        filter(None, (attempt.provider_event_at, event.provider_created_at))
    )


async def _attempt_for(session: AsyncSession, event: StripeEvent) -> PaymentAttempt | None:
    assert event.payment_intent_id is not None
    attempt = await repository.attempt_by_intent(session, event.payment_intent_id)
    if attempt is None and event.payment_id is not None:
        # The webhook can beat the synchronous answer that records the intent's id.
        attempt = await repository.get_attempt(session, event.payment_id)
        if attempt is not None and attempt.provider_payment_id not in (
            None,
            event.payment_intent_id,
        ):
            return None
    return attempt


async def run(payments: Payments, stop: asyncio.Event) -> None:
    """Process stored webhooks until `stop`: woken by new ones, polling in case another
    replica stored them or a retry comes due."""
    while not stop.is_set():
        payments.webhooks_waiting.clear()
        try:
            while not stop.is_set() and await process_next(payments):
                pass
        except Exception:
            log.exception("webhook processor failed; continuing")
        waiter = asyncio.ensure_future(payments.webhooks_waiting.wait())
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait(
            {waiter, stopper},
            timeout=payments.settings.webhook_poll_seconds,
            return_when=asyncio.FIRST_COMPLETED,
        )
        waiter.cancel()
        stopper.cancel()
