"""Account erasure against the delivery log: error texts that quote the address, outcomes
recorded after it, and messages queued while it runs.

The dispatcher is driven by hand, and the concurrent transactions are interleaved by hand:
each test waits for a transaction to be blocked on a lock (or done) before it lets the other
one go on, so the order under test is the one that happens."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pytest
from contracts.events.auth import PasswordResetRequested, UserRegistered
from contracts.events.users import UserDeletionRequested
from notifications_service.models import Delivery
from notifications_service.service import scheduling
from notifications_service.service.dispatcher import Dispatcher
from notifications_service.transports import Email, SendResult, Transports
from shopkit.app import sessionmaker_of
from shopkit.testing import eventually, publish
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope, new_id

from .conftest import Running, admin_view, registered, unique_email

WAIT = 30
"""Seconds any step may take before the test fails instead of hanging."""


class RefusingMail:
    """An SMTP server that refuses every recipient, quoting the address as aiosmtplib does.

    With `held`, each send waits for `release` (after setting `called`): the test decides what
    happens while the message is with the provider."""

    def __init__(
        self, outcome: Literal["retry", "permanent"] = "permanent", *, held: bool = False
    ) -> None:
        self.outcome = outcome
        self.held = held
        self.called = asyncio.Event()
        self.release = asyncio.Event()

    async def send(self, email: Email) -> SendResult:
        if self.held:
            self.called.set()
            await self.release.wait()
        refused = (
            f"SMTPRecipientRefused(550, '5.1.1 <{email.to}>: Recipient unknown', '{email.to}')"
        )
        return SendResult(
            self.outcome, error=f"smtp recipients refused: SMTPRecipientsRefused([{refused}])"
        )

    async def close(self) -> None:
        pass


class NoMail:
    """A provider no message may reach."""

    async def send(self, email: Email) -> SendResult:
        raise AssertionError(f"nothing should be sent, {email.delivery_id} was")

    async def close(self) -> None:
        pass


def _dispatcher(service: Running, mail: RefusingMail | NoMail) -> Dispatcher:
    return Dispatcher(
        sessionmaker=sessionmaker_of(service.app),
        settings=service.settings,
        transports=Transports(email=mail, sms=None),
    )


def _reset(user: UserRegistered) -> PasswordResetRequested:
    return PasswordResetRequested(
        user_id=user.user_id,
        email=user.email,
        reset_token=f"token-{new_id()}",
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )


async def _queue(session: AsyncSession, event: UserRegistered | PasswordResetRequested) -> None:
    """What the event's consumer does, in the caller's transaction."""
    if isinstance(event, UserRegistered):
        await scheduling.registered(
            session=session,
            user_id=event.user_id,
            email=event.email,
            name=event.name,
            at=event.registered_at,
        )
        template, context = "welcome", {"name": event.name}
    else:
        template = "password_reset"
        context = scheduling.reset_context(event)
    await scheduling.queue(
        session=session,
        envelope=Envelope(data=event),
        template=template,
        user_id=event.user_id,
        email=event.email,
        context=context,
    )


async def _queued(service: Running, event: UserRegistered | PasswordResetRequested) -> None:
    async with sessionmaker_of(service.app)() as session, session.begin():
        await _queue(session, event)


async def _forget(session: AsyncSession, user_id: str) -> None:
    await scheduling.forget(session=session, user_id=user_id)
    await session.commit()


async def _stored(service: Running, user_id: str) -> list[Delivery]:
    async with sessionmaker_of(service.app)() as session:
        rows = await session.scalars(select(Delivery).where(Delivery.user_id == user_id))
        return list(rows)


async def _waiting_for_a_lock(service: Running) -> bool:
    """Whether a transaction of the service's database is blocked on a lock."""
    async with sessionmaker_of(service.app)() as session:
        waiting = await session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return bool(waiting)


async def _blocked_or_done(service: Running, task: asyncio.Task[Any]) -> None:
    """Until `task` finishes or waits for a lock another transaction holds."""

    async def check() -> bool:
        return task.done() or await _waiting_for_a_lock(service)

    await eventually(check, timeout=WAIT, interval=0.05)


async def _within(step: Awaitable[Any]) -> Any:
    return await asyncio.wait_for(step, WAIT)


async def test_erasure_removes_the_address_quoted_in_error_texts(quiet: Running) -> None:
    email = unique_email("quoted")
    user = registered(email, name="Dora Quoted")
    await _queued(quiet, user)
    await _dispatcher(quiet, RefusingMail("permanent")).round()  # welcome: failed
    await _queued(quiet, _reset(user))
    await _dispatcher(quiet, RefusingMail("retry")).round()  # reset: pending, to be retried
    before = await admin_view(quiet, user.user_id)
    assert sorted(d["status"] for d in before) == ["failed", "pending"]
    assert all(email in d["last_error"] for d in before)  # what the provider said, as said
    assert all(email in d["history"][0]["error"] for d in before)

    await publish(
        quiet.settings.kafka_namespace,
        UserDeletionRequested(user_id=user.user_id, requested_at=datetime.now(UTC)),
    )

    async def erased() -> list[dict[str, Any]] | None:
        items = await admin_view(quiet, user.user_id)
        return items if all(d["address"] is None for d in items) else None

    after = await eventually(erased, timeout=WAIT, interval=0.2)
    assert email not in str(after)
    # Operators keep the history: what happened and when, only not to which address.
    assert [d["status"] for d in after] == ["skipped", "skipped"]  # never resent either
    by_id = {d["id"]: d for d in after}
    for old in before:
        new = by_id[old["id"]]
        assert new["last_error"]
        assert [(a["attempt"], a["outcome"], a["at"]) for a in new["history"]] == [
            (a["attempt"], a["outcome"], a["at"]) for a in old["history"]
        ]
        assert all(a["error"] for a in new["history"])


@pytest.mark.parametrize("erasure", ["committed", "in_progress"])
async def test_an_outcome_marked_after_erasure_keeps_no_address(
    quiet: Running, erasure: str
) -> None:
    """The send was under way when the account was deleted; its refusal comes back after."""
    email = unique_email("late")
    user = registered(email)
    await _queued(quiet, user)
    mail = RefusingMail("permanent", held=True)
    sending = asyncio.create_task(_dispatcher(quiet, mail).round())
    try:
        await _within(mail.called.wait())
        async with sessionmaker_of(quiet.app)() as session:
            if erasure == "committed":
                await _forget(session, user.user_id)
                mail.release.set()
            else:
                # The erasure has blanked the row but not committed: the outcome waits for it.
                await scheduling.forget(session=session, user_id=user.user_id)
                mail.release.set()
                await _blocked_or_done(quiet, sending)
                assert not sending.done()  # the outcome's update waits for the erasure's
                await session.commit()
            await _within(sending)
    finally:
        sending.cancel()

    [delivery] = await admin_view(quiet, user.user_id)
    assert delivery["status"] == "failed"  # the outcome is recorded...
    assert [a["outcome"] for a in delivery["history"]] == ["permanent"]
    assert delivery["last_error"]
    assert email not in str(delivery)  # ...without the address


@pytest.mark.parametrize("known", [True, False], ids=["registered", "never_heard_of"])
async def test_a_reset_queued_during_erasure_keeps_no_address_or_token(
    quiet: Running, known: bool
) -> None:
    """PasswordResetRequested and UserDeletionRequested come from different topics, applied in
    concurrent transactions: the reset is queued but not committed when the erasure starts."""
    email = unique_email("race")
    user = registered(email)
    if known:
        async with sessionmaker_of(quiet.app)() as session, session.begin():
            await scheduling.registered(
                session=session,
                user_id=user.user_id,
                email=email,
                name=user.name,
                at=user.registered_at,
            )
    reset = _reset(user)
    sessions = sessionmaker_of(quiet.app)
    async with sessions() as queuing, sessions() as erasing:
        await _queue(queuing, reset)
        erased = asyncio.create_task(_forget(erasing, user.user_id))
        try:
            await _blocked_or_done(quiet, erased)
            await queuing.commit()
            await _within(erased)
        finally:
            erased.cancel()

    [stored] = await _stored(quiet, user.user_id)
    assert stored.address is None
    assert reset.reset_token not in str(stored.context)

    await _dispatcher(quiet, NoMail()).round()
    [delivery] = await admin_view(quiet, user.user_id)
    assert delivery["status"] == "skipped"
    assert email not in str(delivery)


async def test_a_message_skipped_for_a_deleted_account_keeps_no_address_or_token(
    quiet: Running,
) -> None:
    """A row the erasure missed (as the race above used to leave) is blanked when skipped."""
    email = unique_email("left")
    user = registered(email)
    async with sessionmaker_of(quiet.app)() as session:
        await _forget(session, user.user_id)
    now = datetime.now(UTC)
    async with sessionmaker_of(quiet.app)() as session, session.begin():
        session.add(
            Delivery(
                id=new_id(),
                user_id=user.user_id,
                order_id=None,
                source_event_id=new_id(),
                source_type="shop.auth.password_reset_requested.v1",
                template="password_reset",
                channel="email",
                address=email,
                language=None,
                context={"reset_token": "left-behind", "expires_at": "soon"},
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
        )

    await _dispatcher(quiet, NoMail()).round()

    [stored] = await _stored(quiet, user.user_id)
    assert stored.status == "skipped"
    assert stored.address is None
    assert stored.context == {}
