"""A dispatcher round cut short by shutdown: what it claimed but never handed to the provider
goes out after the restart; what may have reached the provider is left in doubt, as always."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import timedelta

from notifications_service.models import Delivery
from notifications_service.service import scheduling
from notifications_service.service.dispatcher import Dispatcher
from notifications_service.transports import SmtpTransport, Transports
from shopkit.app import sessionmaker_of
from shopkit.testing import eventually
from sqlalchemy import func, select, update

from contracts import Envelope

from .conftest import Running, registered, unique_email


class SilentServer:
    """An SMTP server that stops answering at a chosen point: before its greeting (nothing can
    have been handed over) or after the message's final dot (it may have been taken)."""

    def __init__(self, silent_at: str) -> None:
        self.silent_at = silent_at
        self.connections = 0
        self.messages = 0
        self._hold = asyncio.Event()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.silent_at == "greeting":
            await self._hold.wait()
        writer.write(b"220 silent.test ESMTP\r\n")
        in_data = False
        while line := await reader.readline():
            if in_data:
                if line == b".\r\n":
                    self.messages += 1
                    await self._hold.wait()
                continue
            command = line[:4].upper()
            if command == b"EHLO":
                writer.write(b"250-silent.test\r\n250 8BITMIME\r\n")
            elif command == b"DATA":
                writer.write(b"354 go ahead\r\n")
                in_data = True
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
            self._hold.set()
            server.close()


async def _welcomes(service: Running, count: int) -> list[str]:
    users = [registered(unique_email("shutdown")) for _ in range(count)]
    async with sessionmaker_of(service.app)() as session, session.begin():
        for user in users:
            await scheduling.queue(
                session=session,
                envelope=Envelope(data=user),
                template="welcome",
                user_id=user.user_id,
                email=user.email,
                context={"name": user.name},
            )
    return [user.user_id for user in users]


async def _states(service: Running, user_ids: list[str]) -> list[tuple[str, int, bool]]:
    """(status, attempts, whether a window of retries started) of each user's delivery."""
    async with sessionmaker_of(service.app)() as session:
        rows = await session.scalars(select(Delivery).where(Delivery.user_id.in_(user_ids)))
        return sorted((d.status, d.attempts, d.first_attempt_at is not None) for d in rows)


async def _round_cut_short(service: Running, server: SilentServer, reached: str) -> None:
    """Run one round against `server` and cancel it, as shutdown does, once `reached` holds."""
    async with server.running() as port:
        # One connection: the second message waits for it inside the transport.
        settings = service.settings.model_copy(update={"smtp_port": port, "smtp_connections": 1})
        smtp = SmtpTransport(settings)
        dispatcher = Dispatcher(
            sessionmaker=sessionmaker_of(service.app),
            settings=settings,
            transports=Transports(email=smtp, sms=None),
        )
        round_ = asyncio.create_task(dispatcher.round())

        async def at_that_point() -> bool:
            return bool(getattr(server, reached) == 1)

        try:
            await eventually(at_that_point, timeout=20, interval=0.05)
            round_.cancel()
            with suppress(asyncio.CancelledError):
                await asyncio.wait_for(round_, 20)
        finally:
            round_.cancel()
            await smtp.close()


async def test_messages_never_handed_over_go_back_to_the_queue(quiet: Running) -> None:
    """They stayed `sending` and turned `uncertain` after the lease: never sent, never retried,
    though the provider had certainly not seen them."""
    user_ids = await _welcomes(quiet, 2)
    await _round_cut_short(quiet, SilentServer("greeting"), "connections")
    assert await _states(quiet, user_ids) == [("pending", 0, False), ("pending", 0, False)]
    async with sessionmaker_of(quiet.app)() as session, session.begin():
        # Not due again while this module's other test runs its own round.
        await session.execute(
            update(Delivery)
            .where(Delivery.user_id.in_(user_ids))
            .values(next_attempt_at=func.now() + timedelta(hours=1))
        )


async def test_a_message_that_may_have_been_taken_is_left_in_doubt(quiet: Running) -> None:
    [user_id] = await _welcomes(quiet, 1)
    await _round_cut_short(quiet, SilentServer("after-data"), "messages")
    assert await _states(quiet, [user_id]) == [("sending", 1, True)]
