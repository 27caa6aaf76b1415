"""Sending queued deliveries: exactly one message per (source event, channel).

The protocol, and why it does not duplicate:

1. Queue (consumer transaction). The handler inserts the delivery with the unique key
   (source_event_id, channel), in the same transaction as the inbox row. A redelivered event
   is dropped by the inbox; even an event handled twice by another path (a replay under a new
   consumer group, a restored backup) hits the unique key and queues nothing.

2. Claim (own short transaction, committed BEFORE the network call). `pending` -> `sending`
   with `attempts + 1` and a lease, `FOR UPDATE SKIP LOCKED` so concurrent dispatchers (replicas)
   never take the same row. From here on, no one else will send this delivery.

3. Send, outside any transaction (never hold a row lock or a connection across SMTP/HTTP).

4. Mark (own transaction): `sending` -> `sent` (or back to `pending` with a backoff, or
   `failed`), fenced by the claimed attempt number so a stale sender can never overwrite a
   later state. `NotificationSent` / `NotificationFailed` go to the outbox in that transaction.
   The outcomes that are ready together share one transaction (a group commit: a send never
   waits for a slower one, only for the mark already under way); if that transaction fails,
   each outcome is marked on its own.

A crash can only fall between 2 and 4. The row then stays `sending` until its lease expires,
and the dispatcher moves it to `uncertain`, NOT back to `pending`: the message may have been
accepted by the provider, and resending would duplicate it. `uncertain` is shown in the admin
view, where a person can decide to send it again (accepting the risk knowingly). The same
applies when the provider's answer is lost (timeout after the message was handed over). The
window is as small as one provider call, and the lease is longer than any call can last
(both transports time out first), so a live sender is never declared dead.

So the guarantee is: at most one message per (event, channel) always, exactly one whenever the
sender does not die inside the provider call, and every in-doubt case is visible.

A shutdown that cuts a round short (the service's grace period ran out) is no crash: the
deliveries it claimed but never handed to a provider (waiting for an SMTP connection, or lost
before DATA) go back to `pending` at once, fenced like a mark, and go out after the restart.
Only those that may have reached the provider are left to become `uncertain`.

Retries: a refusal "for now" (connection refused, 4xx SMTP, HTTP 401/403/408/429/5xx) is tried
again after `retry_base_seconds`, doubling up to `retry_max_seconds`, for as long as
`retry_window_seconds` (a day) has not passed since the first attempt (an admin's resend starts
a new window). A provider outage, or a credential it refuses until an operator replaces it,
delays messages instead of failing them. A refusal "for good" (an unknown recipient) fails at
once. `max_attempts` only bounds a backoff configured so short that the window would mean
thousands of attempts.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from contracts.events.notifications import NotificationFailed, NotificationSent
from fastapi import FastAPI
from shopkit.app import sessionmaker_of
from shopkit.loops import backoff_seconds, every
from shopkit.outbox import Outbox
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts import Envelope
from notifications_service import repository
from notifications_service.config import NotificationsSettings
from notifications_service.models import Delivery, Recipient, messaging
from notifications_service.rendering import render
from notifications_service.service import scheduling
from notifications_service.service.scheduling import channels_for, reset_link_works
from notifications_service.transports import Email, SendResult, Sms, Transports, build_transports

log = logging.getLogger(__name__)

GIVE_BACK_SECONDS = 5.0
"""How long a round cut short by shutdown may spend returning its unsent claims to the queue."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one prepared delivery, waiting to be marked."""

    prepared: Prepared
    result: SendResult
    status: str | None = None
    """Recorded as it is (`skipped`) instead of following from the result."""
    waiting: bool = False
    """Nothing was attempted: the recipient's address is not known yet."""


@dataclass(frozen=True, slots=True)
class Prepared:
    """What one claimed delivery will send, resolved while the claim transaction is open."""

    delivery_id: str
    attempt: int
    created_at: datetime
    first_attempt_at: datetime
    language: str | None = None
    email: Email | None = None
    sms: Sms | None = None
    skip_reason: str | None = None
    error_reason: str | None = None
    error_summary: str | None = None
    """`error_reason` without the details that may be personal (an exception's text)."""
    wait_reason: str | None = None

    @property
    def may_have_left(self) -> bool:
        """Whether the message may have reached a provider (False: certainly not)."""
        message = self.email or self.sms
        return message is not None and message.handover.may_have_left


class Dispatcher:
    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: NotificationsSettings,
        transports: Transports,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.transports = transports

    async def run(self, stop: asyncio.Event) -> None:
        await every(stop, self.settings.dispatch_poll_seconds, self.round, name="dispatch")

    async def round(self) -> bool:
        """Recover expired leases, claim a batch and send it; True if the batch was full."""
        now = datetime.now(UTC)
        async with self.sessionmaker() as session, session.begin():
            expired = await repository.expire_leases(session, now=now)
            claimed = await repository.claim_due(
                session,
                now=now,
                limit=self.settings.dispatch_batch_size,
                lease_until=now + timedelta(seconds=self.settings.send_lease_seconds),
            )
            prepared = [await self._prepare_or_fail(session, delivery) for delivery in claimed]
        for delivery_id in expired:
            log.warning("delivery in doubt after a lost sender", extra={"delivery_id": delivery_id})
        ready: asyncio.Queue[Outcome] = asyncio.Queue()

        async def deliver(p: Prepared) -> None:
            ready.put_nowait(await self._deliver(p))

        # _deliver turns every failure into an outcome, so each task puts exactly one.
        sending = [asyncio.create_task(deliver(p)) for p in prepared]
        try:
            remaining = len(sending)
            while remaining:
                batch = [await ready.get()]
                while not ready.empty():
                    batch.append(ready.get_nowait())
                remaining -= len(batch)
                await self._record(batch)
        except asyncio.CancelledError:
            # Shutdown. The sends are stopped first, so none can reach DATA while the unsent
            # ones are being given back.
            for task in sending:
                task.cancel()
            await self._give_back_unsent(prepared)
            raise
        finally:
            for task in sending:
                task.cancel()  # done by now, unless the round itself was cancelled (shutdown)
        return len(claimed) == self.settings.dispatch_batch_size

    async def _give_back_unsent(self, prepared: list[Prepared]) -> None:
        """Return the round's claims that never reached a provider to the queue, so that they
        go out after the restart instead of turning `uncertain` when their lease runs out."""
        claims = [(p.delivery_id, p.attempt) for p in prepared if not p.may_have_left]
        if not claims:
            return

        async def give_back() -> list[str]:
            async with self.sessionmaker() as session, session.begin():
                return await repository.give_back(session, claims=claims, now=datetime.now(UTC))

        # Shielded: the shutdown that cancelled the round may cancel it again before it is done.
        giving_back = asyncio.ensure_future(give_back())
        try:
            returned = await asyncio.wait_for(asyncio.shield(giving_back), GIVE_BACK_SECONDS)
        except Exception:
            log.exception(
                "returning unsent deliveries to the queue failed; they will be in doubt",
                extra={"deliveries": [delivery_id for delivery_id, _ in claims]},
            )
            return
        log.info("unsent deliveries returned to the queue", extra={"deliveries": returned})

    @staticmethod
    def _claimed(delivery: Delivery) -> Prepared:
        return Prepared(
            delivery_id=delivery.id,
            attempt=delivery.attempts,
            created_at=delivery.created_at,
            # Set by the claim; `updated_at` is the claim's time too.
            first_attempt_at=delivery.first_attempt_at or delivery.updated_at,
        )

    async def _prepare_or_fail(self, session: AsyncSession, delivery: Delivery) -> Prepared:
        try:
            return await self._prepare(session, delivery)
        except Exception as exc:
            # A template or data bug: nothing was sent, and retrying cannot fix it.
            log.exception("preparing a message failed", extra={"delivery_id": delivery.id})
            return replace(
                self._claimed(delivery),
                error_reason=f"could not render: {exc!r}"[:500],
                error_summary="could not render the message",
            )

    async def _prepare(self, session: AsyncSession, delivery: Delivery) -> Prepared:
        base = self._claimed(delivery)
        owner_learned = False
        if delivery.user_id is None and delivery.order_id is not None:
            delivery.user_id = await repository.order_owner(session, delivery.order_id)
            owner_learned = delivery.user_id is not None
        recipient = (
            await repository.recipient(session, delivery.user_id) if delivery.user_id else None
        )
        if recipient is not None and recipient.deleted_at is not None:
            # A row the erasure did not reach (its owner known only now, from the order; or
            # queued alongside the erasure before `queue` locked the recipient): blanked as the
            # erasure would have, since it is never going to be sent.
            delivery.address = None
            delivery.context = {}
            return replace(base, skip_reason="account deleted")
        if owner_learned and recipient is not None:
            await scheduling.queue_owners_channels(session, delivery, recipient)
        if delivery.channel == "sms" and self.transports.sms is None:
            return replace(base, skip_reason="sms not enabled")
        if (
            recipient is not None
            and recipient.channels is not None
            and delivery.channel not in channels_for(delivery.template, recipient)
        ):
            # Preferences as they are now, not as they were when the message was queued: it may
            # have waited (for an address, a retry) while the user turned the channel off.
            return replace(base, skip_reason=f"{delivery.channel} not wanted")
        if delivery.template == "password_reset" and not reset_link_works(
            delivery.context, datetime.now(UTC)
        ):
            # Retries last far longer than a reset link: one that waited past its expiry would
            # only mail a dead link.
            expired = "the reset link expired before it could be sent"
            return replace(base, error_reason=expired, error_summary=expired)
        address = delivery.address or _address_of(recipient, delivery.channel)
        if not address:
            return replace(base, wait_reason=f"no {delivery.channel} address known yet")
        language = (
            recipient.language
            if recipient and recipient.language
            else self.settings.default_language
        )
        base = replace(base, language=language)
        context: dict[str, Any] = {
            "name": recipient.name if recipient else delivery.context.get("name"),
            "storefront_url": self.settings.storefront_url.rstrip("/"),
            **{k: v for k, v in delivery.context.items() if k != "name"},
        }
        if "tracking_number" in context:
            context["tracking_url"] = (
                f"{context['storefront_url']}/api/shipping/track/"
                f"{quote(str(context['tracking_number']))}"
            )
        if "reset_token" in context:
            context["reset_url"] = (
                f"{context['storefront_url']}/reset-password?token="
                f"{quote(str(context['reset_token']))}"
            )
        message = render(delivery.template, language, context)
        if delivery.channel == "sms":
            return replace(base, sms=Sms(delivery_id=delivery.id, to=address, body=message.sms))
        return replace(
            base,
            email=Email(
                delivery_id=delivery.id,
                source_event_id=delivery.source_event_id,
                to=address,
                subject=message.subject,
                text=message.text,
                html=message.html,
            ),
        )

    async def _deliver(self, prepared: Prepared) -> Outcome:
        if prepared.skip_reason:
            skipped = SendResult(
                "permanent", error=prepared.skip_reason, summary=prepared.skip_reason
            )
            return Outcome(prepared, skipped, status="skipped")
        if prepared.error_reason:
            failed = SendResult(
                "permanent", error=prepared.error_reason, summary=prepared.error_summary
            )
            return Outcome(prepared, failed)
        if prepared.wait_reason:
            waiting = SendResult("retry", error=prepared.wait_reason, summary=prepared.wait_reason)
            return Outcome(prepared, waiting, waiting=True)
        try:
            if prepared.sms is not None:
                assert self.transports.sms is not None
                prepared.sms.handover.may_have_left = True
                result = await self.transports.sms.send(prepared.sms)
            else:
                assert prepared.email is not None
                prepared.email.handover.may_have_left = True
                result = await self.transports.email.send(prepared.email)
        except Exception as exc:
            # An unexpected failure inside a provider call: we cannot tell whether it left.
            log.exception("provider call failed unexpectedly")
            result = SendResult(
                "uncertain", error=repr(exc), summary="provider call failed unexpectedly"
            )
        return Outcome(prepared, result)

    async def _record(self, outcomes: list[Outcome]) -> None:
        """Step 4 for the outcomes ready together: one transaction, or one each if it fails."""
        if len(outcomes) > 1:
            try:
                async with self.sessionmaker() as session, session.begin():
                    for outcome in outcomes:
                        await self._mark(session, outcome)
                return
            except Exception:
                log.exception(
                    "recording send outcomes together failed; recording them one by one",
                    extra={"deliveries": [o.prepared.delivery_id for o in outcomes]},
                )
        for outcome in outcomes:
            await self._finish(outcome)

    async def _finish(self, outcome: Outcome) -> None:
        """Step 4 for one outcome; retried a few times, since a lost mark after a real send is
        what turns a sent message into an uncertain one."""
        for attempt in range(5):
            try:
                async with self.sessionmaker() as session, session.begin():
                    await self._mark(session, outcome)
                return
            except Exception:
                log.exception(
                    "recording a send outcome failed",
                    extra={
                        "delivery_id": outcome.prepared.delivery_id,
                        "outcome": outcome.result.outcome,
                    },
                )
                await asyncio.sleep(0.2 * 2**attempt)

    async def _mark(self, session: AsyncSession, outcome: Outcome) -> None:
        prepared, result, status = outcome.prepared, outcome.result, outcome.status
        now = datetime.now(UTC)
        s = self.settings
        values: dict[str, Any] = {
            "updated_at": now,
            "lease_until": None,
            "last_error": result.error,
        }
        if prepared.language is not None:
            values["language"] = prepared.language
        if status is not None:
            values["status"] = status
        elif result.outcome == "sent":
            values.update(
                status="sent",
                sent_at=now,
                last_error=None,
                provider_message_id=result.provider_message_id,
            )
        elif result.outcome == "uncertain":
            values["status"] = "uncertain"
        elif outcome.waiting:
            expired = now - prepared.created_at > timedelta(seconds=s.recipient_wait_seconds)
            values.update(
                status="failed" if expired else "pending",
                attempts=prepared.attempt - 1,  # waiting is not a provider attempt
                next_attempt_at=now
                + timedelta(seconds=min(s.retry_base_seconds * 2, s.retry_max_seconds)),
            )
            if prepared.attempt == 1:
                values["first_attempt_at"] = None  # nor does it start the window of retries
        elif result.outcome == "retry" and self._may_retry(prepared, now):
            delay = backoff_seconds(s.retry_base_seconds, s.retry_max_seconds, prepared.attempt)
            values.update(status="pending", next_attempt_at=now + timedelta(seconds=delay))
        else:
            values["status"] = "failed"
        if values["status"] != "pending":
            # The delivery has ended, sent or not: a reset token has no use any more (a reset
            # link is never sent again, see `log.resend`). Dropped in SQL: an account deletion
            # may have emptied the context meanwhile.
            values["context"] = repository.CONTEXT_WITHOUT_RESET_TOKEN
        updated = await repository.finish(
            session, delivery_id=prepared.delivery_id, attempt=prepared.attempt, values=values
        )
        if updated is None:
            log.warning(
                "send outcome arrived for a delivery no longer ours",
                extra={"delivery_id": prepared.delivery_id},
            )
            return
        error = result.error
        if (
            error is not None
            and status is None
            and not outcome.waiting
            and updated.user_id is not None
            and await repository.erased(session, updated.user_id)
        ):
            # The provider's (or an exception's) words quote the recipient, and the account was
            # deleted while the message was out: they are not kept. Replaced whole rather than
            # cut out of the text, since providers quote an address in forms a search would miss
            # (case changed, punycode, escaped in JSON, a phone number reformatted). Asked only
            # now that the row is ours: an erasure that reached it first has committed (the
            # update above waited for it) and is seen; one that comes later waits for this
            # transaction and erases what it writes.
            error = updated.last_error = repository.ERASED_ERROR
        if not outcome.waiting:
            await repository.add_attempt(
                session,
                delivery_id=updated.id,
                attempt=prepared.attempt,
                outcome=values["status"] if status else result.outcome,
                error=error,
            )
        # The provider's words stay in the log above, where an erasure reaches them; the event
        # goes to Kafka and the outbox, where none does.
        await self._announce(session, updated, error=result.summary or "failed")

    def _may_retry(self, prepared: Prepared, now: datetime) -> bool:
        """Whether a refusal for now is tried again: until the window since the first attempt
        has passed (and within `max_attempts`, a bound for a backoff set too short)."""
        s = self.settings
        window = timedelta(seconds=s.retry_window_seconds)
        return now - prepared.first_attempt_at < window and prepared.attempt < s.max_attempts

    async def _announce(self, session: AsyncSession, delivery: Delivery, *, error: str) -> None:
        if delivery.user_id is None or delivery.channel not in ("email", "sms"):
            return
        outbox = Outbox(session, messaging.outbox)
        if delivery.status == "sent" and delivery.sent_at is not None:
            await outbox.add(
                Envelope(
                    data=NotificationSent(
                        notification_id=delivery.id,
                        user_id=delivery.user_id,
                        template=delivery.template,
                        channel=delivery.channel,  # type: ignore[arg-type]
                        source_event_id=delivery.source_event_id,
                        sent_at=delivery.sent_at,
                    )
                )
            )
        elif delivery.status == "failed":
            await outbox.add(
                Envelope(
                    data=NotificationFailed(
                        notification_id=delivery.id,
                        user_id=delivery.user_id,
                        template=delivery.template,
                        channel=delivery.channel,  # type: ignore[arg-type]
                        source_event_id=delivery.source_event_id,
                        error=error[:500],
                        attempts=delivery.attempts,
                        failed_at=delivery.updated_at,
                    )
                )
            )


def _address_of(recipient: Recipient | None, channel: str) -> str | None:
    if recipient is None:
        return None
    return recipient.email if channel == "email" else recipient.phone


async def dispatcher_job(app: FastAPI, stop: asyncio.Event) -> None:
    settings: NotificationsSettings = app.state.settings
    if not settings.dispatch_enabled:
        return
    transports: Transports = getattr(app.state, "transports", None) or build_transports(
        settings, app.state.http
    )
    app.state.transports = transports
    try:
        await Dispatcher(
            sessionmaker=sessionmaker_of(app), settings=settings, transports=transports
        ).run(stop)
    finally:
        await transports.email.close()
