"""The email as it leaves over SMTP: headers and both alternatives survive the trip, whether the
address is ASCII (classic MIME message) or internationalised (SMTPUTF8)."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

import pytest
from aiosmtplib.email import flatten_message
from notifications_service.config import NotificationsSettings
from notifications_service.transports import Email, SmtpTransport
from shopkit.testing import eventually

from contracts import new_id

from .conftest import mailpit_message, mailpit_messages

SUBJECT = "Pedido 9f3a confirmado — obrigado, João!"
TEXT = "Olá João,\n\nRecebemos o seu pedido de R$ 104,70.\n" + "Linha longa " * 40
HTML = "<p>Olá <b>João</b> &amp; família</p>" + "<p>ção</p>" * 60


def _email(to: str) -> Email:
    return Email(
        delivery_id=new_id(),
        source_event_id=new_id(),
        to=to,
        subject=SUBJECT,
        text=TEXT,
        html=HTML,
    )


def _alternatives(parsed: EmailMessage) -> dict[str, str]:
    found = {}
    for part in parsed.walk():
        if part.get_content_maintype() == "text":
            assert isinstance(part, EmailMessage)
            found[part.get_content_subtype()] = part.get_content()
    return found


@pytest.mark.parametrize("to", ["ana.souza@example.com", "joão.ção@exemplo.com.br"])
def test_headers_and_alternatives_survive_serialisation(to: str) -> None:
    settings = NotificationsSettings()
    outgoing = _email(to)
    raw = flatten_message(SmtpTransport(settings).message(outgoing), utf8=not to.isascii())
    # An SMTPUTF8 message carries raw UTF-8 headers, which the receiver reads as UTF-8.
    parsed = email.message_from_string(raw.decode(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)

    assert parsed["Subject"] == SUBJECT
    assert parsed["To"].addresses[0].addr_spec == to
    assert parsed["From"].addresses[0].addr_spec == settings.email_from_address
    assert parsed["From"].addresses[0].display_name == settings.email_from_name
    # The same for every build of one delivery (make_msgid added a time and a random number):
    # a mail client that dedupes by Message-ID collapses an admin's resend.
    message_id = SmtpTransport(settings).message(outgoing)["Message-ID"]
    assert (
        parsed["Message-ID"]
        == message_id
        == f"<{outgoing.delivery_id}@{settings.message_id_domain}>"
    )
    assert parsed["X-Shop-Delivery-Id"] == outgoing.delivery_id
    assert parsed["X-Shop-Event-Id"] == outgoing.source_event_id
    assert parsed.get_content_type() == "multipart/alternative"
    alternatives = _alternatives(parsed)
    assert alternatives["plain"].replace("\r\n", "\n").rstrip("\n") == TEXT.rstrip("\n")
    assert alternatives["html"].replace("\r\n", "\n").rstrip("\n") == HTML


@pytest.mark.parametrize("local", ["ana.mime", "joão.mime"])
async def test_mailpit_receives_both_kinds_of_address(local: str) -> None:
    to = f"{local}-{new_id()[-8:]}@example.com"
    smtp = SmtpTransport(NotificationsSettings())
    try:
        result = await smtp.send(_email(to))
    finally:
        await smtp.close()
    assert result.outcome == "sent", result.error

    async def received() -> list[dict[str, object]] | None:
        found = await mailpit_messages(to)
        return found or None

    [message] = await eventually(received, timeout=20)
    assert message["Subject"] == SUBJECT
    body = await mailpit_message(str(message["ID"]))
    assert "Recebemos o seu pedido de R$ 104,70." in body["Text"]
    assert "<b>João</b> &amp; família" in body["HTML"]
