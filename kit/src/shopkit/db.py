"""Async SQLAlchemy: engine, request-scoped sessions and the unit of work.

A request's session is owned by its dependency: committed when the route returns, rolled back
when it raises. Consumers and background jobs use `UnitOfWork`, whose default is rollback:
nothing is written unless `commit()` is called.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import cache
from types import TracebackType
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import ColumnElement, Insert, MetaData, Table, any_, bindparam, insert, inspect
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, QueryableAttribute
from sqlalchemy.types import TypeEngine

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def service_metadata() -> MetaData:
    """Metadata for one service's tables, with constraint names Alembic can diff."""
    return MetaData(naming_convention=NAMING_CONVENTION)


def table_of(model: type[DeclarativeBase]) -> Table:
    """The Core table of a model. Hot paths query tables directly: the ORM's per-statement
    bookkeeping is measurable at checkout rates and buys nothing for plain rows."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


@cache
def _insert_into(table: Table) -> Insert:
    return insert(table)


async def insert_new(session: AsyncSession, instance: DeclarativeBase) -> None:
    """Insert a new object's row without adding the object to the session, for a row the
    transaction only records. The unit of work's flush of one object costs about twice this
    insert. Columns left unset take their defaults, as they would in a flush; the statement
    compiles once per set of columns given."""
    state = inspect(instance)
    columns = state.mapper.column_attrs
    values = {
        columns[key].columns[0].key: value for key, value in state.dict.items() if key in columns
    }
    await session.execute(_insert_into(table_of(type(instance))), values)


def equals_any(
    column: ColumnElement[Any] | QueryableAttribute[Any], parameter: str, item_type: TypeEngine[Any]
) -> ColumnElement[bool]:
    """`column = ANY(:parameter)`, the values given as one array: for keys that vary in number
    on a statement built once. An IN list is rendered again on every call, and becomes a new
    prepared statement for each length."""
    return column == any_(bindparam(parameter, type_=ARRAY(item_type)))


def create_engine(
    url: str, *, pool_size: int = 10, application_name: str = "shop", pre_ping: bool = False
) -> AsyncEngine:
    """An engine whose pool recovers from a database restart without pinging every checkout.

    `pre_ping` costs three round trips (BEGIN, probe, ROLLBACK with asyncpg) before every
    transaction. Without it, a connection broken by a restart fails the one transaction using
    it (a transient error: consumers retry it, clients get a 503 and retry with their
    Idempotency-Key), SQLAlchemy then discards the whole stale pool, and `pool_recycle` retires
    idle connections.
    """
    # Up to 2 x pool_size connections as before, but kept open once a burst opened them: an
    # overflow connection closed after each use costs PostgreSQL a backend start and a SCRAM
    # handshake per reconnect, which under steady load happened every few requests.
    return create_async_engine(
        url,
        pool_size=2 * pool_size,
        max_overflow=0,
        pool_pre_ping=pre_ping,
        pool_recycle=1800,
        connect_args={"server_settings": {"application_name": application_name}},
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # autoflush off: pending changes reach the database at commit or an explicit flush(); a
    # query (or a `populate_existing` reload) does not see unflushed changes: flush first.
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def create_read_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for routes that only read: AUTOCOMMIT, so no BEGIN/COMMIT round trips."""
    return async_sessionmaker(
        engine.execution_options(isolation_level="AUTOCOMMIT"),
        expire_on_commit=False,
        autoflush=False,
    )


class UnitOfWork:
    """One transaction; rolled back on exit unless committed (cosmicpython's default)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker
        self._session: AsyncSession | None = None

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("unit of work used outside `async with`")
        return self._session

    async def __aenter__(self) -> UnitOfWork:
        self._session = self._sessionmaker()
        await self._session.begin()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session = self.session
        try:
            if session.in_transaction():
                await session.rollback()
        finally:
            await session.close()
            self._session = None

    async def commit(self) -> None:
        await self.session.commit()

    async def rollback(self) -> None:
        await self.session.rollback()


def _sessionmaker_of(request: Request) -> async_sessionmaker[AsyncSession]:
    sessionmaker: async_sessionmaker[AsyncSession] | None = getattr(
        request.app.state, "sessionmaker", None
    )
    if sessionmaker is None:
        raise RuntimeError("this service has no database configured")
    return sessionmaker


async def request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session: commits after the route succeeds, rolls back if it raises."""
    async with _sessionmaker_of(request)() as session, session.begin():
        yield session


# scope="function": the commit happens before the response is sent, so a client never sees
# success for a transaction that then failed to commit.
SessionDep = Annotated[AsyncSession, Depends(request_session, scope="function")]


async def read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for routes that only read: each statement runs on its own, nothing to commit."""
    sessionmaker: async_sessionmaker[AsyncSession] | None = getattr(
        request.app.state, "read_sessionmaker", None
    )
    if sessionmaker is None:
        raise RuntimeError("this service has no database configured")
    async with sessionmaker() as session:
        yield session


ReadSessionDep = Annotated[AsyncSession, Depends(read_session, scope="function")]
