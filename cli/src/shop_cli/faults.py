"""A small asyncio TCP proxy that can delay, pause or drop connections, for fault injection.

Put it between services and PostgreSQL or Kafka (the broker advertises a `FAULTS` listener at
the proxy's port, so Kafka clients that bootstrap through the proxy stay on it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class FaultProxy:
    listen_port: int
    target_port: int
    host: str = "127.0.0.1"
    delay_seconds: float = 0.0
    _open: asyncio.Event = field(default_factory=asyncio.Event)
    _server: asyncio.Server | None = None
    _connections: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = field(
        default_factory=set
    )
    forwarded_bytes: int = 0
    accepted: int = 0

    async def start(self) -> None:
        self._open.set()
        self._server = await asyncio.start_server(self._accept, self.host, self.listen_port)

    async def stop(self) -> None:
        self.drop_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def pause(self) -> None:
        """Stop moving bytes (connections stay open, as with a stalled network)."""
        self._open.clear()

    def resume(self) -> None:
        self._open.set()

    def drop_all(self) -> int:
        """Reset every open connection; returns how many were cut."""
        dropped = 0
        for client, upstream in list(self._connections):
            for writer in (client, upstream):
                transport = writer.transport
                if transport is not None and not transport.is_closing():
                    transport.abort()
            dropped += 1
        self._connections.clear()
        return dropped

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            await self._open.wait()
            up_reader, up_writer = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        pair = (writer, up_writer)
        self._connections.add(pair)
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self._connections.discard(pair)
            for w in pair:
                with contextlib.suppress(Exception):
                    w.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self._open.wait()
                if self.delay_seconds:
                    await asyncio.sleep(self.delay_seconds)
                writer.write(data)
                self.forwarded_bytes += len(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            transport = writer.transport
            if transport is not None and not transport.is_closing() and writer.can_write_eof():
                with contextlib.suppress(OSError):
                    writer.write_eof()
