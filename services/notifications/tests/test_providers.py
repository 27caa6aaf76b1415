"""SendGrid and Twilio over HTTP against local stand-in servers: retries, failures, doubt, SMS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from contracts.events.notifications import NotificationFailed
from contracts.events.payments import PaymentRefunded
from contracts.events.users import UserPreferencesChanged
from fastapi import FastAPI, Request, Response
from notifications_service.config import NotificationsSettings
from notifications_service.transports import Email, SendGridTransport, Sms, TwilioTransport
from shopkit.app import sessionmaker_of
from shopkit.testing import eventually, publish, serve, wait_for_events
from sqlalchemy import text

from contracts import new_id

from . import events
from .conftest import Running, admin_view, registered, running, unique_email

TWILIO_SID = "AC11111111111111111111111111111111"


class Providers:
    """A stand-in for SendGrid's mail/send and Twilio's Messages API, recording every call."""

    def __init__(self) -> None:
        self.emails: list[dict[str, Any]] = []
        self.sms: list[dict[str, str]] = []
        self.hang_up = asyncio.Event()
        """Set when the stand-in closes: until then a `slow-` address gets no answer at all."""
        self.app = FastAPI()
        self.app.post("/v3/mail/send")(self.mail_send)
        self.app.post("/2010-04-01/Accounts/{sid}/Messages.json")(self.messages)

    def emails_to(self, address: str) -> list[dict[str, Any]]:
        return [e for e in self.emails if e["personalizations"][0]["to"][0]["email"] == address]

    async def mail_send(self, request: Request) -> Response:
        body = await request.json()
        self.emails.append(body)
        to = body["personalizations"][0]["to"][0]["email"]
        if request.headers.get("authorization") != "Bearer test-sendgrid-key":
            return Response(status_code=401)
        if to.startswith("flaky-") and len(self.emails_to(to)) <= 2:
            return Response(status_code=503)
        if to.startswith("bounce-"):
            return Response('{"errors":[{"message":"invalid to"}]}', status_code=400)
        if to.startswith("slow-"):
            await self.hang_up.wait()  # never within the client's timeout, however long it is
        return Response(status_code=202, headers={"X-Message-Id": f"sg-{len(self.emails)}"})

    async def messages(self, sid: str, request: Request) -> dict[str, str]:
        form = parse_qs((await request.body()).decode())
        self.sms.append({"sid": sid, **{k: v[0] for k, v in form.items()}})
        return {"sid": f"SM{len(self.sms):032d}", "status": "queued"}


@pytest.fixture(scope="module")
async def providers() -> AsyncIterator[tuple[Providers, Running]]:
    stand_in = Providers()
    async with serve(stand_in.app) as url:
        try:
            async for service in running(
                email_backend="sendgrid",
                sendgrid_base_url=url,
                sendgrid_api_key="test-sendgrid-key",
                twilio_base_url=url,
                twilio_account_sid=TWILIO_SID,
                # The stand-in shares the test's event loop: on a loaded machine an answer can
                # take seconds, and a late one would turn a sent/retried message uncertain.
                http_timeout_seconds=10,
                max_attempts=4,
            ):
                yield stand_in, service
        finally:
            stand_in.hang_up.set()  # the server waits for its handlers before it stops


async def test_provider_errors_are_retried_with_backoff_and_recorded(
    providers: tuple[Providers, Running],
) -> None:
    stand_in, service = providers
    user = registered(unique_email("flaky"))
    await publish(service.settings.kafka_namespace, user)
    [delivery] = await service.settled(user.user_id, count=1)
    assert delivery["status"] == "sent"
    assert delivery["attempts"] == 3
    [admin] = await admin_view(service, user.user_id)
    assert [a["outcome"] for a in admin["history"]] == ["retry", "retry", "sent"]
    assert admin["provider_message_id"].startswith("sg-")
    assert len(stand_in.emails_to(user.email)) == 3  # two refusals, one acceptance


async def test_a_permanent_refusal_fails_once_and_is_announced(
    providers: tuple[Providers, Running],
) -> None:
    stand_in, service = providers
    user = registered(unique_email("bounce"))
    await publish(service.settings.kafka_namespace, user)
    [delivery] = await service.settled(user.user_id, count=1)
    assert delivery["status"] == "failed"
    assert delivery["attempts"] == 1
    assert len(stand_in.emails_to(user.email)) == 1
    failed = await wait_for_events(
        service.settings.kafka_namespace,
        NotificationFailed,
        where=lambda e: e.user_id == user.user_id,
    )
    assert failed[0].template == "welcome"
    assert "400" in failed[0].error


async def test_a_lost_answer_is_uncertain_and_never_resent_blindly(
    providers: tuple[Providers, Running],
) -> None:
    stand_in, service = providers
    user = registered(unique_email("slow"))
    await publish(service.settings.kafka_namespace, user)
    [delivery] = await service.settled(user.user_id, count=1)
    assert delivery["status"] == "uncertain"
    [admin] = await admin_view(service, user.user_id)
    assert "no answer" in admin["last_error"]
    assert len(stand_in.emails_to(user.email)) == 1


async def _prefer(
    service: Running, user_id: str, channels: list[str], *, language: str, phone: str
) -> None:
    """Publish the user's preferences and wait until the service applied them."""
    await publish(
        service.settings.kafka_namespace,
        UserPreferencesChanged(
            user_id=user_id,
            channels=channels,
            language=language,
            marketing_opt_in=False,
            phone=phone,
            changed_at=datetime.now(UTC),
        ),
    )

    async def applied() -> bool:
        export = (
            await service.client.get(
                "/api/notifications/me/export", headers=service.tokens.headers(user_id)
            )
        ).json()
        return bool(export["contact"] and export["contact"]["channels"] == channels)

    await eventually(applied, timeout=30, interval=0.3)


async def test_an_email_turned_off_while_it_waited_is_not_sent(
    providers: tuple[Providers, Running],
) -> None:
    """Preferences were applied when a message was queued only: an order email waiting for
    the customer's address went out after they had turned email off."""
    stand_in, service = providers
    ns = service.settings.kafka_namespace
    user = registered(unique_email("optout"))
    order = events.order_confirmed(user.user_id)
    await publish(ns, order)  # before registration: no address yet, the email waits

    async def waiting() -> bool:
        return any(
            d["template"] == "order_confirmed" for d in await service.deliveries(user.user_id)
        )

    await eventually(waiting, timeout=30, interval=0.3)
    await _prefer(service, user.user_id, ["sms"], language="pt-BR", phone="+5511987651111")
    await publish(ns, user)  # the address arrives (and the account's welcome, always by email)

    deliveries = await service.settled(user.user_id, count=2)
    assert sorted((d["template"], d["channel"], d["status"]) for d in deliveries) == [
        ("order_confirmed", "email", "skipped"),
        ("welcome", "email", "sent"),
    ]
    subjects = [e["subject"] for e in stand_in.emails_to(user.email)]
    assert subjects == ["Bem-vindo(a) à Shop, Ana Souza!"]


async def test_sms_follows_preferences_and_language(providers: tuple[Providers, Running]) -> None:
    stand_in, service = providers
    ns = service.settings.kafka_namespace
    user = registered(unique_email("sms"))
    phone = "+5511987650000"
    # The welcome goes out on registration, before any preference exists: default language.
    await publish(ns, user)
    await service.settled(user.user_id, count=1)
    await _prefer(service, user.user_id, ["email", "sms"], language="en", phone=phone)
    order = events.order_confirmed(user.user_id)
    await publish(ns, order)
    await publish(
        ns,
        PaymentRefunded(
            order_id=order.order_id,
            payment_id=new_id(),
            refund_id=new_id(),
            provider_payment_id="pi_1",
            provider_refund_id="re_1",
            amount=10470,
            currency="BRL",
            full=True,
            reason="customer_request",
            refunded_at=datetime.now(UTC),
        ),
    )

    deliveries = await service.settled(user.user_id, count=5)
    assert sorted((d["template"], d["channel"], d["status"]) for d in deliveries) == [
        ("order_confirmed", "email", "sent"),
        ("order_confirmed", "sms", "sent"),
        ("payment_refunded", "email", "sent"),
        ("payment_refunded", "sms", "sent"),
        ("welcome", "email", "sent"),
    ]
    texts = [s for s in stand_in.sms if s["To"] == phone]
    short = order.order_id[-8:]
    assert sorted(s["Body"] for s in texts) == sorted(
        [
            f"Shop: order {short} confirmed. Total BRL 104.70.",
            f"Shop: refund of BRL 104.70 for order {short}.",
        ]
    )
    assert {s["sid"] for s in texts} == {TWILIO_SID}
    assert {s["From"] for s in texts} == {service.settings.twilio_from_number}
    subjects = sorted(e["subject"] for e in stand_in.emails_to(user.email))
    assert subjects == sorted(
        [f"Order {short} confirmed", f"Refund for order {short}", "Bem-vindo(a) à Shop, Ana Souza!"]
    )


async def test_a_refund_read_before_its_order_reaches_the_owners_channels(
    providers: tuple[Providers, Running],
) -> None:
    """A refund carries no user id: read before its order's events, only an email was queued,
    and a customer who wants SMS alone got no refund notice at all."""
    stand_in, service = providers
    ns = service.settings.kafka_namespace
    user = registered(unique_email("refund-first"))
    phone = "+5511987652222"
    await publish(ns, user)
    await service.settled(user.user_id, count=1)
    await _prefer(service, user.user_id, ["sms"], language="en", phone=phone)
    order = events.order_confirmed(user.user_id)
    refund = PaymentRefunded(
        order_id=order.order_id,
        payment_id=new_id(),
        refund_id=new_id(),
        provider_payment_id="pi_2",
        provider_refund_id="re_2",
        amount=10470,
        currency="BRL",
        full=True,
        reason="customer_request",
        refunded_at=datetime.now(UTC),
    )
    await publish(ns, refund)  # its owner unknown: queued for the default channel

    async def queued_without_owner() -> bool:
        async with sessionmaker_of(service.app)() as session:
            found = await session.scalar(
                text("SELECT count(*) FROM deliveries WHERE order_id = :order_id"),
                {"order_id": order.order_id},
            )
        return bool(found)

    await eventually(queued_without_owner, timeout=30, interval=0.3)
    await publish(ns, order)

    deliveries = await service.settled(user.user_id, count=4)
    assert sorted((d["template"], d["channel"], d["status"]) for d in deliveries) == [
        ("order_confirmed", "sms", "sent"),
        ("payment_refunded", "email", "skipped"),
        ("payment_refunded", "sms", "sent"),
        ("welcome", "email", "sent"),
    ]
    short = order.order_id[-8:]
    assert f"Shop: refund of BRL 104.70 for order {short}." in [
        s["Body"] for s in stand_in.sms if s["To"] == phone
    ]


@pytest.mark.parametrize("status", [401, 403])
async def test_credentials_the_provider_refuses_are_retried_not_a_lost_message(
    status: int,
) -> None:
    """A revoked or mistyped API key failed every message for good: once an operator fixed
    the key, nothing that had waited was sent. The refusal says nothing about the message."""
    replies = httpx.MockTransport(lambda request: httpx.Response(status, text="unauthorized"))
    settings = NotificationsSettings(
        email_backend="sendgrid",
        sendgrid_api_key="revoked",
        twilio_account_sid=TWILIO_SID,
        twilio_auth_token="revoked",
    )
    async with httpx.AsyncClient(transport=replies) as http:
        email = await SendGridTransport(settings, http).send(
            Email(
                delivery_id=new_id(),
                source_event_id=new_id(),
                to="ana@example.com",
                subject="Pedido",
                text="Obrigado",
                html="<p>Obrigado</p>",
            )
        )
        sms = await TwilioTransport(settings, http).send(
            Sms(delivery_id=new_id(), to="+5511987654321", body="Shop: pedido confirmado")
        )
    assert (email.outcome, sms.outcome) == ("retry", "retry"), (email.error, sms.error)
