"""Step 4 of the delivery protocol: recording what each send did.

Outcomes that are ready together are recorded in one transaction; when that transaction fails,
each is recorded on its own, and none is lost or recorded twice. A sent reset link keeps no
token, and the language it was written in is recorded with it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pytest
from contracts.events.auth import PasswordResetRequested, UserRegistered
from notifications_service.models import Delivery, DeliveryAttempt, messaging
from notifications_service.service import scheduling
from notifications_service.service.dispatcher import Dispatcher, Outcome
from notifications_service.transports import Email, SendResult, Sms, Transports
from shopkit.app import sessionmaker_of
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts import Envelope, new_id

from .conftest import Running, registered, unique_email

BATCH = 5


class InstantMail:
    """A provider that accepts every message at once."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, email: Email) -> SendResult:
        self.sent.append(email.delivery_id)
        return SendResult("sent", provider_message_id=f"<{email.delivery_id}@test>")

    async def close(self) -> None:
        pass


class NoSms:
    async def send(self, sms: Sms) -> SendResult:
        raise AssertionError("no SMS expected")


class CountingSessions:
    """The service's sessionmaker, counting the transactions opened through it."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker
        self.opened = 0

    def __call__(self) -> Any:
        self.opened += 1
        return self.sessionmaker()


async def _queue(
    service: Running, template: str, *events: UserRegistered | PasswordResetRequested
) -> None:
    """Queue the event's email as its consumer would, with the context the template needs."""
    async with sessionmaker_of(service.app)() as session, session.begin():
        for event in events:
            await scheduling.queue(
                session=session,
                envelope=Envelope(data=event),
                template=template,
                user_id=event.user_id,
                email=event.email,
                context=(
                    {"name": event.name}
                    if isinstance(event, UserRegistered)
                    else scheduling.reset_context(event)
                ),
            )


async def _queue_welcomes(service: Running, count: int) -> list[str]:
    users = [registered(unique_email("mark")) for _ in range(count)]
    await _queue(service, "welcome", *users)
    return [user.user_id for user in users]


async def _state(service: Running, user_ids: list[str]) -> list[tuple[str, int, int]]:
    """(status, attempt rows, outbox events) of each user's delivery."""
    async with sessionmaker_of(service.app)() as session:
        deliveries = (
            await session.scalars(select(Delivery).where(Delivery.user_id.in_(user_ids)))
        ).all()
        found = []
        for delivery in deliveries:
            attempts = await session.scalar(
                select(func.count()).where(DeliveryAttempt.delivery_id == delivery.id)
            )
            events = await session.scalar(
                select(func.count())
                .select_from(messaging.outbox)
                .where(messaging.outbox.c.key == delivery.user_id)
            )
            found.append((delivery.status, attempts or 0, events or 0))
        return found


def _dispatcher(service: Running, sessions: CountingSessions, mail: InstantMail) -> Dispatcher:
    return Dispatcher(
        sessionmaker=sessions,  # type: ignore[arg-type]
        settings=service.settings,
        transports=Transports(email=mail, sms=NoSms()),
    )


async def test_outcomes_ready_together_are_recorded_in_one_transaction(quiet: Running) -> None:
    users = await _queue_welcomes(quiet, BATCH)
    sessions = CountingSessions(sessionmaker_of(quiet.app))
    mail = InstantMail()

    await _dispatcher(quiet, sessions, mail).round()

    assert len(mail.sent) == BATCH
    # One transaction claims the batch; the instant sends are all ready for the next one.
    assert sessions.opened == 2
    assert sorted(await _state(quiet, users)) == [("sent", 1, 1)] * BATCH


async def test_a_failed_group_is_recorded_one_by_one_without_duplicates(
    quiet: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = await _queue_welcomes(quiet, BATCH)
    sessions = CountingSessions(sessionmaker_of(quiet.app))
    mail = InstantMail()
    real_mark = Dispatcher._mark
    calls = 0

    async def mark_failing_once(self: Dispatcher, session: AsyncSession, outcome: Outcome) -> None:
        nonlocal calls
        calls += 1
        await real_mark(self, session, outcome)
        if calls == BATCH:  # the group's last mark: its attempts and events were written
            raise RuntimeError("the database went away mid-transaction")

    monkeypatch.setattr(Dispatcher, "_mark", mark_failing_once)

    await _dispatcher(quiet, sessions, mail).round()

    assert len(mail.sent) == BATCH
    # Claim, the failed group, then one transaction per outcome.
    assert sessions.opened == 2 + BATCH
    assert sorted(await _state(quiet, users)) == [("sent", 1, 1)] * BATCH


async def test_a_sent_reset_link_keeps_no_token_and_records_its_language(
    mailer: Running,
) -> None:
    user = registered(unique_email("reset"))
    reset = PasswordResetRequested(
        user_id=user.user_id,
        email=user.email,
        reset_token=f"token-{new_id()}",
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )
    await _queue(mailer, "password_reset", reset)

    [delivery] = await mailer.settled(user.user_id, count=1)
    assert delivery["status"] == "sent"
    async with sessionmaker_of(mailer.app)() as session:
        stored = await session.scalar(select(Delivery).where(Delivery.user_id == user.user_id))
    assert stored is not None
    assert stored.context == {"expires_at": scheduling.reset_context(reset)["expires_at"]}
    assert stored.language == mailer.settings.default_language


class Answering:
    """A provider that gives every message the same outcome."""

    def __init__(self, outcome: Literal["permanent", "uncertain"]) -> None:
        self.outcome: Literal["permanent", "uncertain"] = outcome

    async def send(self, email: Email) -> SendResult:
        return SendResult(self.outcome, error=f"refused <{email.to}>")

    async def close(self) -> None:
        pass


def _reset_link(user: UserRegistered, *, valid_for: timedelta) -> dict[str, str]:
    """The context the consumer stores for a reset link (the expiry as the message shows it)."""
    expires_at = datetime.now(UTC) + valid_for
    return {"reset_token": f"token-{new_id()}", "expires_at": expires_at.strftime(EXPIRY_FORMAT)}


EXPIRY_FORMAT = "%Y-%m-%d %H:%M UTC"


async def _queue_reset(service: Running, context: dict[str, str]) -> str:
    user = registered(unique_email("reset"))
    async with sessionmaker_of(service.app)() as session, session.begin():
        await scheduling.queue(
            session=session,
            envelope=Envelope(
                data=PasswordResetRequested(
                    user_id=user.user_id,
                    email=user.email,
                    reset_token=context["reset_token"],
                    expires_at=datetime.now(UTC) + timedelta(hours=1),
                )
            ),
            template="password_reset",
            user_id=user.user_id,
            email=user.email,
            context=context,
        )
    return user.user_id


async def _stored_reset(service: Running, user_id: str) -> Delivery:
    async with sessionmaker_of(service.app)() as session:
        return (await session.scalars(select(Delivery).where(Delivery.user_id == user_id))).one()


def _resend(service: Running, delivery_id: str) -> Any:
    return service.client.post(
        f"/api/notifications/admin/deliveries/{delivery_id}/resend",
        headers=service.tokens.headers(new_id(), ("customer", "admin")),
    )


@pytest.mark.parametrize(
    ("outcome", "status"), [("permanent", "failed"), ("uncertain", "uncertain")]
)
async def test_a_reset_link_that_did_not_go_out_keeps_no_token_and_is_not_resent(
    quiet: Running, outcome: Literal["permanent", "uncertain"], status: str
) -> None:
    """The token was dropped only once sent: a failed or uncertain reset kept it until the
    account was deleted, and an admin's resend mailed a link that no longer worked."""
    context = _reset_link(registered(unique_email()), valid_for=timedelta(hours=1))
    user_id = await _queue_reset(quiet, context)
    await Dispatcher(
        sessionmaker=sessionmaker_of(quiet.app),
        settings=quiet.settings,
        transports=Transports(email=Answering(outcome), sms=NoSms()),
    ).round()

    stored = await _stored_reset(quiet, user_id)
    assert stored.status == status
    assert stored.context == {"expires_at": context["expires_at"]}

    resent = await _resend(quiet, stored.id)
    assert resent.status_code == 409
    assert resent.headers["content-type"] == "application/problem+json"
    assert "reset" in resent.json()["type"]
    assert (await _stored_reset(quiet, user_id)).status == status  # left as it was


async def test_a_reset_whose_sender_was_lost_keeps_no_token(quiet: Running) -> None:
    context = _reset_link(registered(unique_email()), valid_for=timedelta(hours=1))
    user_id = await _queue_reset(quiet, context)
    async with sessionmaker_of(quiet.app)() as session, session.begin():
        # What a sender that died after claiming the reset leaves behind.
        delivery = (
            await session.scalars(select(Delivery).where(Delivery.user_id == user_id))
        ).one()
        delivery.status, delivery.attempts = "sending", 1
        delivery.lease_until = datetime.now(UTC) - timedelta(seconds=1)

    await Dispatcher(
        sessionmaker=sessionmaker_of(quiet.app),
        settings=quiet.settings,
        transports=Transports(email=InstantMail(), sms=NoSms()),
    ).round()

    stored = await _stored_reset(quiet, user_id)
    assert stored.status == "uncertain"
    assert stored.context == {"expires_at": context["expires_at"]}


async def test_a_reset_link_that_expired_while_it_waited_is_not_mailed(quiet: Running) -> None:
    """Retries now last hours, far longer than a reset link does."""
    context = _reset_link(registered(unique_email()), valid_for=-timedelta(minutes=2))
    user_id = await _queue_reset(quiet, context)
    mail = InstantMail()
    await Dispatcher(
        sessionmaker=sessionmaker_of(quiet.app),
        settings=quiet.settings,
        transports=Transports(email=mail, sms=NoSms()),
    ).round()

    stored = await _stored_reset(quiet, user_id)
    assert mail.sent == []
    assert stored.status == "failed"
    assert stored.context == {"expires_at": context["expires_at"]}
