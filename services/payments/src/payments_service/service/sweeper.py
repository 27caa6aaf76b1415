"""The safety net under webhooks: attempts still waiting on the customer (3-D Secure) are
re-fetched now and then, and attempts whose authorization answer was lost (a timeout the
consumer gave up on) resend their recorded request under the same idempotency key (or, once
the provider has forgotten that key, first look for the intent the request made).
Authorizations no dispatch captured within `capture_authorized_after_seconds` are captured here,
before the provider lets them lapse."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from contracts.types import utc_now
from shopkit.loops import every

from payments_service import repository
from payments_service.models import AttemptStatus
from payments_service.runtime import Payments, outbox_emitter
from payments_service.service.authorization import send_authorization, settle_unanswered
from payments_service.service.transitions import apply_intent, capture
from payments_service.service.work import Work

log = logging.getLogger(__name__)

BATCH = 50


async def sweep_once(payments: Payments) -> int:
    """One pass over waiting attempts; returns how many moved."""
    now = utc_now()
    settings = payments.settings
    async with payments.sessionmaker() as session:
        candidates = await repository.attempts_to_sweep(
            session,
            pending_before=now - timedelta(seconds=settings.sweep_pending_after_seconds),
            action_before=now - timedelta(seconds=settings.sweep_interval_seconds),
            authorized_before=now - timedelta(seconds=settings.capture_authorized_after_seconds),
            limit=BATCH,
        )
    moved = 0
    for order_id, payment_id in candidates:
        try:
            moved += await _sweep_attempt(payments, order_id, payment_id)
        except Exception as exc:
            log.warning(
                "sweep of an attempt failed",
                extra={"order_id": order_id, "payment_id": payment_id, "error": repr(exc)},
            )
    return moved


async def _sweep_attempt(payments: Payments, order_id: str, payment_id: str) -> int:
    async with payments.sessionmaker() as session, session.begin():
        order = await repository.lock_existing_order(session, order_id, skip_locked=True)
        if order is None:
            return 0  # someone is working on this order right now
        attempt = await repository.get_attempt(session, payment_id)
        if attempt is None:
            return 0
        before = attempt.status
        work = Work(
            session=session,
            payments=payments,
            emit=outbox_emitter(session, correlation_id=order.correlation_id, causation_id=None),
        )
        if attempt.status == AttemptStatus.PENDING and attempt.idempotency_key:
            if order.is_cancelled:
                await settle_unanswered(work, order, attempt)
            else:
                await send_authorization(work, order, attempt)
        elif attempt.status == AttemptStatus.REQUIRES_ACTION and attempt.provider_payment_id:
            intent = await payments.provider.retrieve(attempt.provider_payment_id)
            await apply_intent(work, order, attempt, intent)
        elif attempt.status == AttemptStatus.AUTHORIZED and not order.is_cancelled:
            # Chosen for its age (see `capture_authorized_after_seconds`): the dispatch that
            # would capture it is late, and the hold is about to lapse.
            log.info(
                "capturing an authorization before it lapses",
                extra={"order_id": order_id, "payment_id": payment_id},
            )
            await capture(work, order, attempt)
        if attempt.status == before:
            await repository.touch_attempt(session, attempt.id)
            return 0
        return 1


async def run(payments: Payments, stop: asyncio.Event) -> None:
    async def sweep() -> None:
        moved = await sweep_once(payments)
        if moved:
            log.info("sweep moved attempts", extra={"moved": moved})

    await every(
        stop, payments.settings.sweep_interval_seconds, sweep, name="payment-sweep", wait_first=True
    )
