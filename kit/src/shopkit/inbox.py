"""The inbox: which events a consumer has already applied, recorded with the effect itself.

`PostgresInbox` writes `(consumer, event_id)` in the same transaction as the handler's changes,
so an event's effect happens at most once however often it is delivered, concurrently or after
a crash. A duplicate is acknowledged and skipped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import cache
from typing import Any, Protocol, TypeVar

from sqlalchemy import String, Table, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY, UUID, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.dml import ReturningInsert

from contracts import Envelope, Event, caused_by
from shopkit.messaging import MessagingTables
from shopkit.outbox import Outbox

C_co = TypeVar("C_co", covariant=True)


class InboxTransaction(Protocol[C_co]):
    async def claim(self, consumer: str, envelopes: Sequence[Envelope[Event]]) -> set[str]:
        """Record the envelopes as handled; returns the ids not handled before."""

    def context(self, envelope: Envelope[Event]) -> C_co:
        """What a handler receives for one envelope."""

    async def commit(self) -> None: ...


class InboxStore(Protocol[C_co]):
    def transaction(self) -> Any:
        """An async context manager yielding an `InboxTransaction`; rolls back unless committed."""


class EventContext:
    """A handler's unit of work: its session, and `emit` for the events it causes."""

    def __init__(self, session: AsyncSession, outbox: Outbox, envelope: Envelope[Event]) -> None:
        self.session = session
        self.outbox = outbox
        self.envelope = envelope

    async def emit(self, *events: Event) -> None:
        """Write events to the outbox in this transaction, continuing the cause's flow."""
        await self.outbox.add(*(caused_by(self.envelope, event) for event in events))


class PostgresInboxTransaction:
    def __init__(self, session: AsyncSession, tables: MessagingTables) -> None:
        self.session = session
        self.tables = tables
        self.outbox = Outbox(session, tables.outbox)

    async def claim(self, consumer: str, envelopes: Sequence[Envelope[Event]]) -> set[str]:
        if not envelopes:
            return set()
        types = {e.id: e.type for e in envelopes}
        result = await self.session.execute(
            _claim_statement(self.tables.inbox),
            {"consumer": consumer, "ids": list(types), "types": list(types.values())},
        )
        return {str(event_id) for event_id in result.scalars()}

    def context(self, envelope: Envelope[Event]) -> EventContext:
        return EventContext(self.session, self.outbox, envelope)

    async def commit(self) -> None:
        await self.session.commit()


@cache
def _claim_statement(inbox: Table) -> ReturningInsert[Any]:
    """One statement for a whole batch, its ids and types passed as two arrays: a multi-row
    VALUES would be compiled anew for every batch size (most of a claim's cost), this one is
    compiled once and prepared once per connection."""
    ids = bindparam("ids", type_=ARRAY(UUID(as_uuid=False)))
    types = bindparam("types", type_=ARRAY(String))
    batch = func.unnest(ids, types).table_valued("event_id", "ce_type").render_derived()
    return (
        insert(inbox)
        .from_select(
            ["consumer", "event_id", "ce_type"],
            select(bindparam("consumer", type_=String), batch.c.event_id, batch.c.ce_type),
        )
        .on_conflict_do_nothing(index_elements=["consumer", "event_id"])
        .returning(inbox.c.event_id)
    )


class PostgresInbox:
    transaction_class: type[PostgresInboxTransaction] = PostgresInboxTransaction

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], tables: MessagingTables
    ) -> None:
        self.sessionmaker = sessionmaker
        self.tables = tables

    def open_transaction(self, session: AsyncSession) -> PostgresInboxTransaction:
        """The unit of work of one batch; a service overrides this to hand its handlers more
        than the session (its runtime, caches, policies)."""
        return self.transaction_class(session, self.tables)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresInboxTransaction]:
        async with self.sessionmaker() as session:
            await session.begin()
            try:
                yield self.open_transaction(session)
            finally:
                if session.in_transaction():
                    await session.rollback()
