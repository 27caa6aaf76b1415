"""The inventory's inbox: the shared PostgreSQL inbox, plus locks taken for a whole batch.

The consumer runtime applies a batch of events in one transaction. If each handler locked its
own rows in its own order, two batches could lock the same rows in opposite orders and deadlock.
So before any handler runs, the batch takes every lock it will need in the global order (orders
first, then stock rows by sku); the handlers' own locking then finds them already held.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from contracts.events.catalog import ProductCreated
from contracts.events.orders import OrderPlaced
from shopkit.inbox import EventContext, PostgresInbox, PostgresInboxTransaction
from shopkit.messaging import MessagingTables
from shopkit.outbox import Outbox
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts import Envelope, Event
from inventory_service import repository
from inventory_service.service import StockPolicy


class InventoryContext(EventContext):
    """A handler's unit of work, plus the stock policy from the service's settings."""

    def __init__(
        self, session: AsyncSession, outbox: Outbox, envelope: Envelope[Event], policy: StockPolicy
    ) -> None:
        super().__init__(session, outbox, envelope)
        self.policy = policy


class InventoryInboxTransaction(PostgresInboxTransaction):
    def __init__(self, session: AsyncSession, tables: MessagingTables, policy: StockPolicy) -> None:
        super().__init__(session, tables)
        self.policy = policy

    async def claim(self, consumer: str, envelopes: Sequence[Envelope[Event]]) -> set[str]:
        fresh = await super().claim(consumer, envelopes)
        batch = [e for e in envelopes if e.id in fresh]
        order_ids = sorted(
            {
                str(order_id)
                for e in batch
                if (order_id := getattr(e.data, "order_id", None)) is not None
            }
        )
        skus = {line.sku for e in batch if isinstance(e.data, OrderPlaced) for line in e.data.lines}
        skus |= {e.data.sku for e in batch if isinstance(e.data, ProductCreated)}
        await repository.lock_orders(self.session, order_ids)
        skus |= await repository.skus_of_reservations(self.session, order_ids)
        await repository.lock_stock(self.session, skus)
        return fresh

    def context(self, envelope: Envelope[Event]) -> InventoryContext:
        return InventoryContext(self.session, self.outbox, envelope, self.policy)


class InventoryInbox(PostgresInbox):
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        tables: MessagingTables,
        policy: StockPolicy,
    ) -> None:
        super().__init__(sessionmaker, tables)
        self.policy = policy

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[InventoryInboxTransaction]:
        async with self.sessionmaker() as session:
            await session.begin()
            try:
                yield InventoryInboxTransaction(session, self.tables, self.policy)
            finally:
                if session.in_transaction():
                    await session.rollback()
