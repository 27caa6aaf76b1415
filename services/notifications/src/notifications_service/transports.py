"""Email and SMS providers, each answering with what happened to the message.

The outcome is what the delivery protocol needs to stay exactly-once:
* `sent`: the provider accepted it (with its message id when it gives one);
* `retry`: it certainly did not go out (connection refused, lost before DATA, 4xx SMTP, HTTP
  401/403/408/429/5xx);
* `permanent`: it never will (bad address, other 4xx HTTP, 5xx SMTP);
* `uncertain`: the provider may have accepted it but we could not hear so (the connection
  broke or timed out after the message was handed over). Resending would risk a duplicate.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr
from typing import Any, Literal, Protocol

import aiosmtplib
import httpx

from notifications_service.config import NotificationsSettings

Outcome = Literal["sent", "retry", "permanent", "uncertain"]


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Outcome
    provider_message_id: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Email:
    delivery_id: str
    source_event_id: str
    to: str
    subject: str
    text: str
    html: str


@dataclass(frozen=True, slots=True)
class Sms:
    delivery_id: str
    to: str
    body: str


class EmailTransport(Protocol):
    async def send(self, email: Email) -> SendResult: ...

    async def close(self) -> None:
        """Let go of whatever the transport keeps open between messages."""


class SmsTransport(Protocol):
    async def send(self, sms: Sms) -> SendResult: ...


_LATER = frozenset({401, 403, 408, 429})
"""Refusals that say nothing about the message: our credentials were refused or revoked (an
operator fixes them, and the message should go then), or the provider asks for patience."""


def _http_outcome(response: httpx.Response) -> Outcome:
    if response.is_success:
        return "sent"
    if response.status_code in _LATER or response.status_code >= 500:
        return "retry"
    return "permanent"


async def _post(http: httpx.AsyncClient, url: str, **kwargs: object) -> httpx.Response | SendResult:
    """POST, turning transport failures into outcomes: before the request left -> retry,
    after -> uncertain."""
    try:
        return await http.post(url, **kwargs)  # type: ignore[arg-type]
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        return SendResult("retry", error=f"connection failed: {exc!r}")
    except httpx.HTTPError as exc:
        return SendResult("uncertain", error=f"no answer after sending: {exc!r}")


class _SmtpClient(aiosmtplib.SMTP):
    """An SMTP client that knows whether the current message was handed over: a failure before
    DATA (a connection lost at MAIL FROM or RCPT TO) certainly delivered nothing."""

    handed_over = False

    async def data(self, message: str | bytes, /, **kwargs: Any) -> aiosmtplib.SMTPResponse:
        self.handed_over = True
        return await super().data(message, **kwargs)


class SmtpTransport:
    """SMTP over at most `smtp_connections` connections, kept open between messages.

    A connection costs a TCP handshake, the greeting, EHLO (and with STARTTLS a TLS handshake,
    EHLO again and AUTH) before the message and QUIT after it; a kept one costs a NOOP. A kept
    connection that fails its NOOP is closed and replaced, so the message never goes to a
    connection the server dropped while it sat idle. After any failure the connection is closed,
    never kept: its state is unknown.
    """

    def __init__(self, settings: NotificationsSettings) -> None:
        self.settings = settings
        self._idle: list[_SmtpClient] = []
        self._slots = asyncio.Semaphore(settings.smtp_connections)

    def message(self, email: Email) -> Message:
        """The MIME message: text and HTML alternatives, UTF-8.

        An ASCII address gets the classic (compat32) message, which costs a third of
        `EmailMessage` to build and serialise (1.4 ms -> 0.4 ms for an order confirmation);
        an internationalised one needs `EmailMessage`, whose SMTPUTF8 policy writes it raw."""
        s = self.settings
        message: Message
        if email.to.isascii():
            message = MIMEMultipart("alternative")
            message.attach(MIMEText(email.text, "plain", "utf-8"))
            message.attach(MIMEText(email.html, "html", "utf-8"))
        else:
            message = EmailMessage()
            message.set_content(email.text)
            message.add_alternative(email.html, subtype="html")
        message["From"] = formataddr((s.email_from_name, s.email_from_address))
        message["To"] = email.to
        message["Subject"] = email.subject  # encoded as UTF-8 words when it is not ASCII
        # Stable per delivery: a provider or a mail client that dedupes by Message-ID will
        # collapse an (admin-requested) resend of the same delivery.
        message["Message-ID"] = f"<{email.delivery_id}@{s.message_id_domain}>"
        message["X-Shop-Delivery-Id"] = email.delivery_id
        message["X-Shop-Event-Id"] = email.source_event_id
        return message

    async def send(self, email: Email) -> SendResult:
        message = self.message(email)
        async with self._slots:
            return await self._send(message)

    async def _send(self, message: Message) -> SendResult:
        try:
            client = await self._connection()
        except (aiosmtplib.SMTPException, OSError) as exc:
            return SendResult("retry", error=f"smtp connect: {exc!r}")
        client.handed_over = False
        try:
            errors, _ = await client.send_message(message)
        except aiosmtplib.SMTPResponseException as exc:
            await _quit(client)
            # The server answered: 4xx is "try later", 5xx is "never".
            return SendResult(
                "retry" if 400 <= exc.code < 500 else "permanent",
                error=f"smtp {exc.code}: {exc.message}",
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            await _quit(client)
            # 4xx to RCPT is "not now" (greylisting, a full mailbox), 5xx is "never".
            later = bool(exc.recipients) and all(400 <= r.code < 500 for r in exc.recipients)
            return SendResult(
                "retry" if later else "permanent", error=f"smtp recipients refused: {exc!r}"
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            await _quit(client)
            if not client.handed_over:
                return SendResult("retry", error=f"smtp envelope broke: {exc!r}")
            return SendResult("uncertain", error=f"smtp exchange broke: {exc!r}")
        except BaseException:
            client.close()  # cancelled mid-message (shutdown): the connection's state is unknown
            raise
        await self._release(client)
        if errors:
            return SendResult("permanent", error=f"smtp refused recipients: {errors!r}")
        return SendResult("sent", provider_message_id=str(message["Message-ID"]))

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for client in idle:
            await _quit(client)

    async def _connection(self) -> _SmtpClient:
        """A kept connection that still answers, or a new one."""
        while self._idle:
            client = self._idle.pop()
            try:
                await client.noop()
            except (aiosmtplib.SMTPException, OSError):
                client.close()
                continue
            return client
        s = self.settings
        client = _SmtpClient(
            hostname=s.smtp_host,
            port=s.smtp_port,
            timeout=s.smtp_timeout_seconds,
            local_hostname=s.smtp_local_hostname,
            start_tls=s.smtp_starttls,
            tls_context=ssl.create_default_context() if s.smtp_starttls else None,
        )
        try:
            await client.connect()
            if s.smtp_username:
                await client.login(s.smtp_username, s.smtp_password.get_secret_value())
        except BaseException:
            client.close()
            raise
        return client

    async def _release(self, client: _SmtpClient) -> None:
        if self.settings.smtp_keep_connections:
            self._idle.append(client)  # at most one per slot
        else:
            await _quit(client)


async def _quit(client: aiosmtplib.SMTP) -> None:
    try:
        await client.quit()
    except (aiosmtplib.SMTPException, OSError):
        client.close()


class SendGridTransport:
    """SendGrid's v3 mail/send HTTP API (any compatible server via `sendgrid_base_url`)."""

    def __init__(self, settings: NotificationsSettings, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self.http = http

    async def close(self) -> None:
        """Nothing of its own: the HTTP client belongs to the app."""

    async def send(self, email: Email) -> SendResult:
        s = self.settings
        body = {
            "personalizations": [{"to": [{"email": email.to}]}],
            "from": {"email": s.email_from_address, "name": s.email_from_name},
            "subject": email.subject,
            "content": [
                {"type": "text/plain", "value": email.text},
                {"type": "text/html", "value": email.html},
            ],
            "custom_args": {
                "delivery_id": email.delivery_id,
                "source_event_id": email.source_event_id,
            },
        }
        reply = await _post(
            self.http,
            f"{s.sendgrid_base_url.rstrip('/')}/v3/mail/send",
            json=body,
            timeout=s.http_timeout_seconds,
            headers={"Authorization": f"Bearer {s.sendgrid_api_key.get_secret_value()}"},
        )
        if isinstance(reply, SendResult):
            return reply
        outcome = _http_outcome(reply)
        return SendResult(
            outcome,
            provider_message_id=reply.headers.get("X-Message-Id"),
            error=None
            if outcome == "sent"
            else f"sendgrid {reply.status_code}: {reply.text[:300]}",
        )


class TwilioTransport:
    """Twilio's Messages API (`POST /2010-04-01/Accounts/<sid>/Messages.json`)."""

    def __init__(self, settings: NotificationsSettings, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self.http = http

    async def send(self, sms: Sms) -> SendResult:
        s = self.settings
        url = (
            f"{s.twilio_base_url.rstrip('/')}/2010-04-01/Accounts/"
            f"{s.twilio_account_sid}/Messages.json"
        )
        reply = await _post(
            self.http,
            url,
            timeout=s.http_timeout_seconds,
            data={"To": sms.to, "From": s.twilio_from_number, "Body": sms.body},
            auth=(s.twilio_account_sid, s.twilio_auth_token.get_secret_value()),
        )
        if isinstance(reply, SendResult):
            return reply
        outcome = _http_outcome(reply)
        sid = None
        if outcome == "sent":
            try:
                sid = str(reply.json().get("sid") or "") or None
            except ValueError:
                sid = None
        return SendResult(
            outcome,
            provider_message_id=sid,
            error=None if outcome == "sent" else f"twilio {reply.status_code}: {reply.text[:300]}",
        )


@dataclass
class Transports:
    email: EmailTransport
    sms: SmsTransport | None


def build_transports(settings: NotificationsSettings, http: httpx.AsyncClient) -> Transports:
    email: EmailTransport = (
        SendGridTransport(settings, http)
        if settings.email_backend == "sendgrid"
        else SmtpTransport(settings)
    )
    return Transports(
        email=email, sms=TwilioTransport(settings, http) if settings.sms_enabled else None
    )
