"""SMTP connections are kept between messages, and one the server dropped meanwhile is replaced
before a message is handed to it: every message arrives once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiosmtplib
import pytest
from notifications_service.config import NotificationsSettings
from notifications_service.transports import Email, SmtpTransport
from shopkit.testing import eventually, pipe

from contracts import new_id

from .conftest import mailpit_messages, refusing_server


def _email(to: str) -> Email:
    return Email(
        delivery_id=new_id(),
        source_event_id=new_id(),
        to=to,
        subject="Pedido confirmado",
        text="Obrigado!",
        html="<p>Obrigado!</p>",
    )


class Relay:
    """A TCP relay in front of Mailpit whose open connections can be cut, as a server that
    drops idle clients does."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.accepted = 0
        self._writers: list[asyncio.StreamWriter] = []

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", self.target_port
        )
        self._writers += [writer, upstream_writer]
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    def cut(self) -> None:
        for writer in self._writers:
            writer.close()
        self._writers.clear()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[int]:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        try:
            yield server.sockets[0].getsockname()[1]
        finally:
            self.cut()
            server.close()


@asynccontextmanager
async def transport(settings: NotificationsSettings) -> AsyncIterator[SmtpTransport]:
    smtp = SmtpTransport(settings)
    try:
        yield smtp
    finally:
        await smtp.close()


async def _arrived_once(address: str) -> None:
    async def found() -> list[object] | None:
        return await mailpit_messages(address) or None

    messages = await eventually(found, timeout=20)
    await asyncio.sleep(0.5)  # a duplicate would be right behind
    assert len(await mailpit_messages(address)) == 1 == len(messages)


@pytest.mark.parametrize(("keep", "connections"), [(True, 1), (False, 3)])
async def test_messages_in_a_row_share_one_connection_unless_none_is_kept(
    keep: bool, connections: int
) -> None:
    relay = Relay(NotificationsSettings().smtp_port)
    async with relay.running() as port:
        settings = NotificationsSettings(smtp_port=port, smtp_keep_connections=keep)
        addresses = [f"row-{new_id()[-10:]}@example.com" for _ in range(3)]
        async with transport(settings) as smtp:
            for address in addresses:
                result = await smtp.send(_email(address))
                assert result.outcome == "sent", result.error
        assert relay.accepted == connections
    for address in addresses:
        await _arrived_once(address)


async def test_a_kept_connection_the_server_dropped_is_replaced_before_the_message() -> None:
    relay = Relay(NotificationsSettings().smtp_port)
    async with relay.running() as port:
        settings = NotificationsSettings(smtp_port=port)
        first, second = (f"dropped-{new_id()[-10:]}@example.com" for _ in range(2))
        async with transport(settings) as smtp:
            assert (await smtp.send(_email(first))).outcome == "sent"
            relay.cut()  # the server hangs up on the idle connection
            result = await smtp.send(_email(second))
        assert result.outcome == "sent", result.error
        assert relay.accepted == 2
    await _arrived_once(first)
    await _arrived_once(second)


async def test_a_connection_is_not_kept_after_a_failed_exchange() -> None:
    async with transport(NotificationsSettings()) as smtp:
        # Mailpit refuses a recipient without a domain: the exchange fails after MAIL FROM.
        refused = await smtp.send(_email("no-domain"))
        assert refused.outcome in ("permanent", "retry")
        assert smtp._idle == []
        address = f"after-{new_id()[-10:]}@example.com"
        assert (await smtp.send(_email(address))).outcome == "sent"
        assert len(smtp._idle) == 1
        assert isinstance(smtp._idle[0], aiosmtplib.SMTP)
    await _arrived_once(address)


async def test_messages_sent_at_once_wait_for_one_of_the_connections() -> None:
    relay = Relay(NotificationsSettings().smtp_port)
    async with relay.running() as port:
        settings = NotificationsSettings(smtp_port=port, smtp_connections=2)
        addresses = [f"burst-{new_id()[-10:]}@example.com" for _ in range(8)]
        async with transport(settings) as smtp:
            results = await asyncio.gather(*(smtp.send(_email(a)) for a in addresses))
            assert [r.outcome for r in results] == ["sent"] * len(addresses)
            assert len(smtp._idle) == 2
        assert relay.accepted == 2
    for address in addresses:
        await _arrived_once(address)


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [(b"451 4.7.1 Greylisted", "retry"), (b"550 5.1.1 No such user", "permanent")],
)
async def test_a_recipient_refused_for_now_is_retried_and_one_refused_for_good_is_not(
    answer: bytes, outcome: str
) -> None:
    """Every refusal of the recipient counted as permanent: a greylisting server's "try again
    later" failed the email for good after one attempt."""
    async with (
        refusing_server(answer.decode()) as port,
        transport(NotificationsSettings(smtp_port=port)) as smtp,
    ):
        result = await smtp.send(_email(f"someone-{new_id()[-8:]}@example.com"))
    assert result.outcome == outcome, result.error


class HangingUpServer:
    """An SMTP server that hangs up at a chosen point of the exchange: at `MAIL` (nothing was
    handed over) or right after the message's final dot (it may have been taken)."""

    def __init__(self, hang_up_at: str) -> None:
        self.hang_up_at = hang_up_at

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 stand-in ESMTP\r\n")
        in_data = False
        while line := await reader.readline():
            if in_data:
                if line == b".\r\n":
                    if self.hang_up_at == "after-data":
                        break
                    writer.write(b"250 queued\r\n")
                    in_data = False
                continue
            command = line[:4].upper()
            if command == self.hang_up_at.encode():
                break
            if command == b"EHLO":
                writer.write(b"250-stand-in\r\n250 8BITMIME\r\n")
            elif command == b"DATA":
                writer.write(b"354 go ahead\r\n")
                in_data = True
            elif command == b"QUIT":
                writer.write(b"221 bye\r\n")
                break
            else:
                writer.write(b"250 ok\r\n")
            await writer.drain()
        writer.close()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[int]:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        try:
            yield server.sockets[0].getsockname()[1]
        finally:
            server.close()


@pytest.mark.parametrize(
    ("hang_up_at", "outcome"),
    [("MAIL", "retry"), ("RCPT", "retry"), ("after-data", "uncertain")],
)
async def test_a_connection_lost_before_the_message_was_handed_over_is_retried(
    hang_up_at: str, outcome: str
) -> None:
    """Every broken exchange was `uncertain`, which is never resent: an email lost at MAIL FROM
    (nothing handed over) stayed undelivered for good. Only a loss after DATA is in doubt."""
    server = HangingUpServer(hang_up_at)
    async with server.running() as port, transport(NotificationsSettings(smtp_port=port)) as smtp:
        result = await smtp.send(_email("ana@example.com"))
    assert result.outcome == outcome, result.error
