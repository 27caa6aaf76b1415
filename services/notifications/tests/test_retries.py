"""How long a refused message keeps being retried: for a window of time since it was first
tried, with a backoff that grows to a cap, so an outage of hours loses nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from contracts.events.notifications import NotificationFailed
from notifications_service.config import NotificationsSettings
from notifications_service.models import Delivery, messaging
from notifications_service.service import scheduling
from notifications_service.service.dispatcher import Dispatcher
from notifications_service.transports import Email, SendResult, Transports
from shopkit.app import sessionmaker_of
from sqlalchemy import func, select, update

from contracts import Envelope, new_id

from .conftest import Running, admin_view, registered, unique_email

WINDOW = 24 * 3600.0


class Down:
    """A provider that cannot be reached: every message is certainly not sent, try later."""

    async def send(self, email: Email) -> SendResult:
        return SendResult("retry", error="smtp connect: ConnectionRefusedError(111)")

    async def close(self) -> None:
        pass


class Unknown:
    """A provider that refuses the recipient for good."""

    async def send(self, email: Email) -> SendResult:
        return SendResult("permanent", error=f"smtp 550: 5.1.1 <{email.to}>: Recipient unknown")

    async def close(self) -> None:
        pass


def _dispatcher(service: Running, mail: Down | Unknown) -> Dispatcher:
    # The service's default policy except a lower cap, reached within a few attempts.
    settings = service.settings.model_copy(
        update={"retry_base_seconds": 5.0, "retry_max_seconds": 60.0}
    )
    return Dispatcher(
        sessionmaker=sessionmaker_of(service.app),
        settings=settings,
        transports=Transports(email=mail, sms=None),
    )


async def _welcome(service: Running) -> str:
    user = registered(unique_email("outage"))
    async with sessionmaker_of(service.app)() as session, session.begin():
        await scheduling.queue(
            session=session,
            envelope=Envelope(data=user),
            template="welcome",
            user_id=user.user_id,
            email=user.email,
            context={"name": user.name},
        )
    return user.user_id


async def _delivery(service: Running, user_id: str) -> Delivery:
    async with sessionmaker_of(service.app)() as session:
        return (await session.scalars(select(Delivery).where(Delivery.user_id == user_id))).one()


async def _make_due(service: Running, user_id: str, *, tried_seconds_ago: float = 0.0) -> None:
    """Jump the clock: the retry is due now, the first attempt was that long ago."""
    values: dict[str, object] = {"next_attempt_at": func.now()}
    if tried_seconds_ago:
        values["first_attempt_at"] = func.now() - timedelta(seconds=tried_seconds_ago)
    async with sessionmaker_of(service.app)() as session, session.begin():
        await session.execute(update(Delivery).where(Delivery.user_id == user_id).values(values))


async def _failures_announced(service: Running, user_id: str) -> int:
    async with sessionmaker_of(service.app)() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(messaging.outbox)
            .where(
                messaging.outbox.c.key == user_id,
                messaging.outbox.c.ce_type == NotificationFailed.ce_type,
            )
        )
    return count or 0


async def test_an_outage_is_retried_for_the_whole_window_with_a_capped_backoff(
    quiet: Running,
) -> None:
    """Six attempts 5, 10, 20, 40 and 80 s apart were the whole budget: an outage longer than
    about two and a half minutes failed every message queued in it, for good."""
    user_id = await _welcome(quiet)
    dispatcher = _dispatcher(quiet, Down())
    gaps = []
    for _ in range(10):
        await dispatcher.round()
        delivery = await _delivery(quiet, user_id)
        assert delivery.status == "pending", delivery.last_error
        gaps.append((delivery.next_attempt_at - delivery.updated_at).total_seconds())
        await _make_due(quiet, user_id)
    assert gaps == [5, 10, 20, 40, 60, 60, 60, 60, 60, 60]
    assert await _failures_announced(quiet, user_id) == 0

    # A day after the first attempt the provider is still down: the message fails, once.
    await _make_due(quiet, user_id, tried_seconds_ago=WINDOW + 1)
    await dispatcher.round()
    delivery = await _delivery(quiet, user_id)
    assert (delivery.status, delivery.attempts) == ("failed", 11)
    assert await _failures_announced(quiet, user_id) == 1


async def test_a_resent_message_gets_a_new_window(quiet: Running) -> None:
    user_id = await _welcome(quiet)
    dispatcher = _dispatcher(quiet, Down())
    await dispatcher.round()
    await _make_due(quiet, user_id, tried_seconds_ago=WINDOW + 1)
    await dispatcher.round()
    [failed] = await admin_view(quiet, user_id)
    assert failed["status"] == "failed"

    resent = await quiet.client.post(
        f"/api/notifications/admin/deliveries/{failed['id']}/resend",
        headers=quiet.tokens.headers(new_id(), ("customer", "admin")),
    )
    assert resent.status_code == 200
    await dispatcher.round()
    assert (await _delivery(quiet, user_id)).status == "pending"  # retried again, not failed
    await _make_due(quiet, user_id, tried_seconds_ago=WINDOW + 1)
    await dispatcher.round()  # leaves nothing due for the module's other tests


async def test_a_recipient_refused_for_good_fails_at_once(quiet: Running) -> None:
    user_id = await _welcome(quiet)
    await _dispatcher(quiet, Unknown()).round()
    delivery = await _delivery(quiet, user_id)
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert await _failures_announced(quiet, user_id) == 1


def test_the_window_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert NotificationsSettings().retry_window_seconds == WINDOW
    monkeypatch.setenv("NOTIFICATIONS_RETRY_WINDOW_SECONDS", "3600")
    assert NotificationsSettings().retry_window_seconds == 3600
