"""Emails for a confirmed, shipped and delivered order reach Mailpit exactly once each."""

from __future__ import annotations

from contracts.events.notifications import NotificationSent
from notifications_service.service import scheduling
from shopkit.app import sessionmaker_of
from shopkit.testing import publish, wait_for_events

from contracts import Envelope

from . import events
from .conftest import Running, mailpit_message, mailpit_messages, registered, unique_email


async def test_each_event_mails_once_even_when_redelivered(mailer: Running) -> None:
    ns = mailer.settings.kafka_namespace
    email = unique_email()
    user = registered(email, name="Ana & Filhos")
    order = events.order_confirmed(user.user_id)
    shipped = events.dispatched(user.user_id, order.order_id)
    arrived = events.delivered(user.user_id, order.order_id)
    envelopes = [Envelope(data=e) for e in (user, order, shipped, arrived)]

    await publish(ns, *envelopes)
    await publish(ns, *envelopes)  # the broker redelivers every one of them

    deliveries = await mailer.settled(user.user_id, count=4)
    assert sorted(d["template"] for d in deliveries) == [
        "order_confirmed",
        "order_delivered",
        "order_shipped",
        "welcome",
    ]
    assert {d["status"] for d in deliveries} == {"sent"}
    assert {d["channel"] for d in deliveries} == {"email"}
    assert sorted(d["event_id"] for d in deliveries) == sorted(e.id for e in envelopes)
    # Every delivery is marked only after its send returned, so Mailpit's count is final here.
    messages = await mailpit_messages(email)
    short = order.order_id[-8:]
    assert sorted(m["Subject"] for m in messages) == sorted(
        [
            "Bem-vindo(a) à Shop, Ana & Filhos!",
            f"Pedido {short} confirmado",
            f"Pedido {short} enviado",
            f"Pedido {short} entregue",
        ]
    )

    confirmed = next(m for m in messages if m["Subject"].endswith("confirmado"))
    body = await mailpit_message(confirmed["ID"])
    assert "R$ 104,70" in body["Text"]
    assert "Dom Casmurro" in body["HTML"]
    welcome = await mailpit_message(next(m for m in messages if "Bem-vindo" in m["Subject"])["ID"])
    assert "Ana &amp; Filhos" in welcome["HTML"]  # HTML escaped, text not
    assert "Ana & Filhos" in welcome["Text"]

    sent = await wait_for_events(
        ns,
        NotificationSent,
        count=4,
        where=lambda e: e.user_id == user.user_id,
    )
    assert len(sent) == 4


async def test_the_delivery_key_holds_without_the_inbox(mailer: Running) -> None:
    """Even a handler run twice for one event (a replay under another consumer group, say)
    queues one message per channel: the unique key, not only the inbox, guarantees it."""
    email = unique_email()
    user = registered(email)
    envelope = Envelope(data=user)
    queued = []
    for _ in range(3):
        async with sessionmaker_of(mailer.app)() as session, session.begin():
            queued.append(
                await scheduling.queue(
                    session=session,
                    envelope=envelope,
                    template="welcome",
                    user_id=user.user_id,
                    email=email,
                    context={"name": user.name},
                )
            )
    assert queued == [["email"], [], []]
    deliveries = await mailer.settled(user.user_id, count=1)
    assert len(deliveries) == 1
    assert len(await mailpit_messages(email)) == 1
