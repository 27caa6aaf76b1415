"""The inventory's inbox: the shared PostgreSQL inbox, plus one stock book per batch.

The consumer runtime applies a batch of events in one transaction. If each handler locked its
own rows in its own order, two batches could lock the same rows in opposite orders and deadlock.
So before any handler runs, the batch loads a `StockBook` holding every lock it will need, taken
in the global order (orders first, then stock rows by sku); the handlers change the book in
memory, and the transaction writes it back, with the events they caused, before committing.
"""

from __future__ import annotations

from collections.abc import Sequence

from contracts.events.catalog import ProductCreated
from contracts.events.orders import OrderPlaced
from shopkit.inbox import EventContext, PostgresInbox, PostgresInboxTransaction
from shopkit.messaging import MessagingTables
from shopkit.outbox import Outbox
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts import Envelope, Event, caused_by
from inventory_service import repository
from inventory_service.book import StockBook
from inventory_service.service import StockPolicy


class InventoryContext(EventContext):
    """A handler's unit of work: the batch's stock book, the policy, and `emit`."""

    def __init__(
        self,
        session: AsyncSession,
        outbox: Outbox,
        envelope: Envelope[Event],
        *,
        policy: StockPolicy,
        book: StockBook,
        pending: list[Envelope[Event]],
    ) -> None:
        super().__init__(session, outbox, envelope)
        self.policy = policy
        self.book = book
        self._pending = pending

    async def emit(self, *events: Event) -> None:
        """Queue events for the outbox; written with the book, in emission order, at commit."""
        self._pending.extend(caused_by(self.envelope, event) for event in events)


class InventoryInboxTransaction(PostgresInboxTransaction):
    def __init__(self, session: AsyncSession, tables: MessagingTables, policy: StockPolicy) -> None:
        super().__init__(session, tables)
        self.policy = policy
        self.book = StockBook(stock={}, reservations={})
        self.pending: list[Envelope[Event]] = []

    async def claim(self, consumer: str, envelopes: Sequence[Envelope[Event]]) -> set[str]:
        fresh = await super().claim(consumer, envelopes)
        batch = [e.data for e in envelopes if e.id in fresh]
        products = {e.sku for e in batch if isinstance(e, ProductCreated)}
        # New skus get their row first, so that it can be locked with the others.
        await repository.ensure_stock_rows(self.session, products)
        self.book = await repository.load_book(
            self.session,
            order_ids={str(o) for e in batch if (o := getattr(e, "order_id", None)) is not None},
            skus=products
            | {line.sku for e in batch if isinstance(e, OrderPlaced) for line in e.lines},
        )
        return fresh

    def context(self, envelope: Envelope[Event]) -> InventoryContext:
        return InventoryContext(
            self.session,
            self.outbox,
            envelope,
            policy=self.policy,
            book=self.book,
            pending=self.pending,
        )

    async def commit(self) -> None:
        await repository.save_book(self.session, self.book)
        await self.outbox.add(*self.pending)
        self.pending.clear()
        await super().commit()


class InventoryInbox(PostgresInbox):
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        tables: MessagingTables,
        policy: StockPolicy,
    ) -> None:
        super().__init__(sessionmaker, tables)
        self.policy = policy

    def open_transaction(self, session: AsyncSession) -> InventoryInboxTransaction:
        return InventoryInboxTransaction(session, self.tables, self.policy)
