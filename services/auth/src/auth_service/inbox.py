"""The auth service's inbox: the shared PostgreSQL inbox, with the service's runtime in the
handler's context (deleting an account also denies its access tokens in Redis)."""

from __future__ import annotations

from shopkit.inbox import EventContext, PostgresInbox, PostgresInboxTransaction
from shopkit.messaging import MessagingTables
from shopkit.outbox import Outbox
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth_service.runtime import Runtime
from contracts import Envelope, Event


class AuthEventContext(EventContext):
    """A handler's unit of work, plus the runtime the service functions take as `rt`."""

    def __init__(
        self, session: AsyncSession, outbox: Outbox, envelope: Envelope[Event], *, rt: Runtime
    ) -> None:
        super().__init__(session, outbox, envelope)
        self.rt = rt


class AuthInboxTransaction(PostgresInboxTransaction):
    def __init__(self, session: AsyncSession, tables: MessagingTables, rt: Runtime) -> None:
        super().__init__(session, tables)
        self.rt = rt

    def context(self, envelope: Envelope[Event]) -> AuthEventContext:
        return AuthEventContext(self.session, self.outbox, envelope, rt=self.rt)


class AuthInbox(PostgresInbox):
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        tables: MessagingTables,
        rt: Runtime,
    ) -> None:
        super().__init__(sessionmaker, tables)
        self.rt = rt

    def open_transaction(self, session: AsyncSession) -> AuthInboxTransaction:
        return AuthInboxTransaction(session, self.tables, self.rt)
