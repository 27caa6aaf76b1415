"""Wakes requests waiting for an order to change, instead of clients polling for the saga.

Every status change notifies the PostgreSQL channel `orders_changed` with the order id (in the
transition's own statement, delivered at commit, so across all replicas of the service). One
listening connection per process wakes the requests waiting for that order. If the listener is
down, waiting requests simply time out and answer with the order as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import asyncpg
from shopkit.loops import sleep_or_stop

log = logging.getLogger(__name__)

CHANNEL = "orders_changed"


class OrderChanges:
    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}
        self.woken = 0
        """Waiting requests woken by a change notification (for metrics and tests)."""

    @contextlib.contextmanager
    def watch(self, order_id: str) -> Iterator[asyncio.Future[None]]:
        """A future resolved at the order's next change; register before reading the order, so a
        change between the read and the wait is not missed."""
        changed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(order_id, set())
        waiters.add(changed)
        try:
            yield changed
        finally:
            waiters.discard(changed)
            if not waiters:
                self._waiters.pop(order_id, None)

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, order_id: str) -> None:
        for changed in self._waiters.get(order_id, ()):
            if not changed.done():
                changed.set_result(None)
                self.woken += 1

    def _wake_all(self) -> None:
        """The listener lost its connection: waiters re-read now rather than wait in vain."""
        for waiters in self._waiters.values():
            for changed in waiters:
                if not changed.done():
                    changed.set_result(None)

    async def listen(self, dsn: str, stop: asyncio.Event) -> None:
        """Keep a LISTEN connection open until `stop`, reconnecting with backoff."""
        backoff = 0.5
        while not stop.is_set():
            try:
                await self._listen_once(dsn, stop)
                backoff = 0.5
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning("order change listener interrupted", extra={"error": repr(exc)})
            if not await sleep_or_stop(stop, backoff):
                backoff = min(backoff * 2, 10.0)

    @staticmethod
    async def _until(stop: asyncio.Event) -> None:
        await stop.wait()

    async def _listen_once(self, dsn: str, stop: asyncio.Event) -> None:
        conn = await asyncpg.connect(dsn, timeout=10)
        closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_close(_conn: Any) -> None:
            if not closed.done():
                closed.set_result(None)

        try:
            conn.add_termination_listener(on_close)
            await conn.add_listener(CHANNEL, self._on_notify)
            stopping: asyncio.Future[None] = asyncio.ensure_future(self._until(stop))
            try:
                await asyncio.wait([stopping, closed], return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopping.cancel()
        finally:
            self._wake_all()
            if not conn.is_closed():
                with contextlib.suppress(Exception):
                    await conn.close(timeout=5)
