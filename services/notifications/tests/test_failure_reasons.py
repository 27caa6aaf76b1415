"""What a failure says outside the service: NotificationFailed goes to Kafka and the outbox,
which an account's erasure never reaches, so it names the transport and the provider's codes,
never the provider's own words (they quote the recipient's address or number)."""

from __future__ import annotations

import json

import httpx
import pytest
from contracts.events.notifications import NotificationFailed
from notifications_service.config import NotificationsSettings
from notifications_service.models import Delivery, messaging
from notifications_service.service import scheduling
from notifications_service.service.dispatcher import Dispatcher
from notifications_service.transports import (
    Email,
    SendGridTransport,
    Sms,
    SmtpTransport,
    Transports,
    TwilioTransport,
)
from shopkit.app import sessionmaker_of
from sqlalchemy import select

from contracts import Envelope, new_id

from .conftest import Running, refusing_server, registered, unique_email


def _email(to: str) -> Email:
    return Email(
        delivery_id=new_id(),
        source_event_id=new_id(),
        to=to,
        subject="Pedido",
        text="Obrigado",
        html="<p>Obrigado</p>",
    )


@pytest.mark.parametrize(
    ("answer", "summary"),
    [
        ("550 5.1.1 <{to}>: Recipient address rejected: User unknown", "smtp 550 5.1.1"),
        ("452 4.2.2 <{to}>: Mailbox full", "smtp 452 4.2.2"),
        ("553 Requested action not taken: {to} not allowed", "smtp 553"),
    ],
)
async def test_an_smtp_refusal_is_summed_up_by_its_codes(answer: str, summary: str) -> None:
    address = f"ana.{new_id()[-8:]}@example.com"
    async with refusing_server(answer) as port:
        smtp = SmtpTransport(NotificationsSettings(smtp_port=port))
        try:
            result = await smtp.send(_email(address))
        finally:
            await smtp.close()
    assert result.outcome in ("retry", "permanent")
    assert result.summary == f"{summary} recipient refused"
    assert result.error is not None and address in result.error  # the log keeps the details


async def test_http_refusals_are_summed_up_by_status_and_error_code() -> None:
    address, phone = "ana@example.com", "+5511987654321"

    def reply(request: httpx.Request) -> httpx.Response:
        if "mail/send" in request.url.path:
            return httpx.Response(
                400, json={"errors": [{"message": f"invalid to: {address}", "field": "to"}]}
            )
        return httpx.Response(
            400,
            json={
                "code": 21211,
                "message": f"The 'To' number {phone} is not a valid phone number.",
            },
        )

    async with httpx.AsyncClient(transport=httpx.MockTransport(reply)) as http:
        settings = NotificationsSettings(email_backend="sendgrid")
        email = await SendGridTransport(settings, http).send(_email(address))
        sms = await TwilioTransport(settings, http).send(
            Sms(delivery_id=new_id(), to=phone, body="Shop: pedido confirmado")
        )
    assert (email.outcome, email.summary) == ("permanent", "sendgrid 400")
    assert (sms.outcome, sms.summary) == ("permanent", "twilio 400 21211")
    assert address in (email.error or "") and phone in (sms.error or "")


async def test_the_failure_event_does_not_quote_the_recipient(quiet: Running) -> None:
    email = unique_email("refused")
    user = registered(email)
    sessionmaker = sessionmaker_of(quiet.app)
    async with sessionmaker() as session, session.begin():
        await scheduling.queue(
            session=session,
            envelope=Envelope(data=user),
            template="welcome",
            user_id=user.user_id,
            email=email,
            context={"name": user.name},
        )
    async with refusing_server("550 5.1.1 <{to}>: Recipient unknown") as port:
        smtp = SmtpTransport(quiet.settings.model_copy(update={"smtp_port": port}))
        try:
            await Dispatcher(
                sessionmaker=sessionmaker,
                settings=quiet.settings,
                transports=Transports(email=smtp, sms=None),
            ).round()
        finally:
            await smtp.close()

    async with sessionmaker() as session:
        delivery = (
            await session.scalars(select(Delivery).where(Delivery.user_id == user.user_id))
        ).one()
        [payload] = (
            await session.scalars(
                select(messaging.outbox.c.payload).where(
                    messaging.outbox.c.key == user.user_id,
                    messaging.outbox.c.ce_type == NotificationFailed.ce_type,
                )
            )
        ).all()
    assert delivery.status == "failed"
    assert delivery.last_error is not None and email in delivery.last_error
    assert email.split("@")[0] not in payload.decode()
    assert json.loads(payload)["error"] == "smtp 550 5.1.1 recipient refused"
