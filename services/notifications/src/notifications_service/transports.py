"""Email and SMS providers, each answering with what happened to the message.

The outcome is what the delivery protocol needs to stay exactly-once:
* `sent`: the provider accepted it (with its message id when it gives one);
* `retry`: it certainly did not go out (connection refused, lost before DATA, 4xx SMTP, HTTP
  401/403/408/429/5xx);
* `permanent`: it never will (bad address, other 4xx HTTP, 5xx SMTP);
* `uncertain`: the provider may have accepted it but we could not hear so (the connection
  broke or timed out after the message was handed over). Resending would risk a duplicate.

Each failure comes in two words: `error`, what the provider or the exception said, kept in the
delivery log only (erasure replaces it, since providers quote the address or number in it);
and `summary`, the transport and the provider's codes only, which may leave the service.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from dataclasses import dataclass, field
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
    """The provider's (or the exception's) own words: personal data, for the delivery log."""
    summary: str | None = None
    """What went wrong without naming anyone (`smtp 550 5.1.1 recipient refused`,
    `sendgrid 400`, `twilio 400 21211`): what NotificationFailed says."""


class Handover:
    """Whether a message may have reached its provider, for a send cut short (shutdown): one
    that certainly did not can be queued again without risking a duplicate.

    The dispatcher sets it just before calling the transport, as from then on the message may
    leave for all it knows; a transport that knows better (SMTP: nothing leaves before DATA)
    clears it on entry and sets it again when the message starts to leave."""

    __slots__ = ("may_have_left",)

    def __init__(self) -> None:
        self.may_have_left = False


@dataclass(frozen=True, slots=True)
class Email:
    delivery_id: str
    source_event_id: str
    to: str
    subject: str
    text: str
    html: str
    handover: Handover = field(default_factory=Handover, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Sms:
    delivery_id: str
    to: str
    body: str
    handover: Handover = field(default_factory=Handover, compare=False, repr=False)


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


async def _post(
    provider: str, http: httpx.AsyncClient, url: str, **kwargs: object
) -> httpx.Response | SendResult:
    """POST, turning transport failures into outcomes: before the request left -> retry,
    after -> uncertain."""
    try:
        return await http.post(url, **kwargs)  # type: ignore[arg-type]
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        return SendResult(
            "retry", error=f"connection failed: {exc!r}", summary=f"{provider} connection failed"
        )
    except httpx.HTTPError as exc:
        return SendResult(
            "uncertain",
            error=f"no answer after sending: {exc!r}",
            summary=f"{provider} no answer after sending",
        )


_ENHANCED_CODE = re.compile(r"^\s*([245]\.\d{1,3}\.\d{1,3})(?:\s|$)")
"""RFC 3463's enhanced status code at the start of an SMTP reply's text (`5.1.1 <ana@...>`)."""


def _smtp_codes(code: int, message: str) -> str:
    """`smtp 550 5.1.1`: a reply's codes, without the text that follows them."""
    enhanced = _ENHANCED_CODE.match(message)
    return f"smtp {code} {enhanced.group(1)}" if enhanced else f"smtp {code}"


class _SmtpClient(aiosmtplib.SMTP):
    """An SMTP client that knows whether the current message was handed over: a failure before
    DATA (a connection lost at MAIL FROM or RCPT TO) certainly delivered nothing."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.handover = Handover()
        """The current message's; replaced for each one."""

    async def data(self, message: str | bytes, /, **kwargs: Any) -> aiosmtplib.SMTPResponse:
        self.handover.may_have_left = True
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
        # Until DATA nothing leaves, however long the message waits for a connection.
        email.handover.may_have_left = False
        async with self._slots:
            return await self._send(message, email.handover)

    async def _send(self, message: Message, handover: Handover) -> SendResult:
        try:
            client = await self._connection()
        except (aiosmtplib.SMTPException, OSError) as exc:
            return SendResult(
                "retry", error=f"smtp connect: {exc!r}", summary="smtp connect failed"
            )
        client.handover = handover
        try:
            errors, _ = await client.send_message(message)
        except aiosmtplib.SMTPResponseException as exc:
            await _quit(client)
            # The server answered: 4xx is "try later", 5xx is "never".
            return SendResult(
                "retry" if 400 <= exc.code < 500 else "permanent",
                error=f"smtp {exc.code}: {exc.message}",
                summary=_smtp_codes(exc.code, exc.message),
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            await _quit(client)
            # 4xx to RCPT is "not now" (greylisting, a full mailbox), 5xx is "never".
            later = bool(exc.recipients) and all(400 <= r.code < 500 for r in exc.recipients)
            refusal = exc.recipients[0] if exc.recipients else None
            return SendResult(
                "retry" if later else "permanent",
                error=f"smtp recipients refused: {exc!r}",
                summary=(
                    f"{_smtp_codes(refusal.code, refusal.message)} recipient refused"
                    if refusal
                    else "smtp recipient refused"
                ),
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            await _quit(client)
            if not handover.may_have_left:
                return SendResult(
                    "retry",
                    error=f"smtp envelope broke: {exc!r}",
                    summary="smtp connection lost before the message",
                )
            return SendResult(
                "uncertain",
                error=f"smtp exchange broke: {exc!r}",
                summary="smtp connection lost after the message",
            )
        except BaseException:
            client.close()  # cancelled mid-message (shutdown): the connection's state is unknown
            raise
        await self._release(client)
        if errors:
            codes = " ".join(sorted({_smtp_codes(r.code, r.message) for r in errors.values()}))
            return SendResult(
                "permanent",
                error=f"smtp refused recipients: {errors!r}",
                summary=f"{codes} recipient refused",
            )
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
            "sendgrid",
            self.http,
            f"{s.sendgrid_base_url.rstrip('/')}/v3/mail/send",
            json=body,
            timeout=s.http_timeout_seconds,
            headers={"Authorization": f"Bearer {s.sendgrid_api_key.get_secret_value()}"},
        )
        if isinstance(reply, SendResult):
            return reply
        outcome = _http_outcome(reply)
        if outcome == "sent":
            return SendResult(outcome, provider_message_id=reply.headers.get("X-Message-Id"))
        return SendResult(
            outcome,
            error=f"sendgrid {reply.status_code}: {reply.text[:300]}",
            summary=f"sendgrid {reply.status_code}",
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
            "twilio",
            self.http,
            url,
            timeout=s.http_timeout_seconds,
            data={"To": sms.to, "From": s.twilio_from_number, "Body": sms.body},
            auth=(s.twilio_account_sid, s.twilio_auth_token.get_secret_value()),
        )
        if isinstance(reply, SendResult):
            return reply
        outcome = _http_outcome(reply)
        try:
            body = reply.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {}
        if outcome == "sent":
            return SendResult(outcome, provider_message_id=str(body.get("sid") or "") or None)
        # Twilio's own error code (21211: not a valid phone number) tells more than the status;
        # only a number is taken, never the message that quotes the phone.
        code = body.get("code")
        return SendResult(
            outcome,
            error=f"twilio {reply.status_code}: {reply.text[:300]}",
            summary=f"twilio {reply.status_code}"
            + (f" {code}" if isinstance(code, int) and not isinstance(code, bool) else ""),
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
