"""The orders service's database engine, tuned for the checkout path.

The shared runtime's engine pings every connection it hands out (`pool_pre_ping`): with asyncpg
that is BEGIN, a probe and ROLLBACK, three round trips before every transaction, about a quarter
of the CPU of a simple read here. The orders service trades it for the pool's own recovery: a
connection broken by a database restart fails its one transaction (retried by the client with
its Idempotency-Key, or by the consumer), SQLAlchemy then discards the whole stale pool, and
`pool_recycle` retires idle connections. `ORDERS_DATABASE_PRE_PING=true` restores the ping.

Read-only routes use an AUTOCOMMIT session: a single SELECT needs no BEGIN/COMMIT round trips.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from shopkit.db import create_sessionmaker
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from orders_service.config import OrdersSettings


async def open_database(app: FastAPI) -> None:
    """Startup hook: replace the runtime's engine with this service's, before any worker starts."""
    settings: OrdersSettings = app.state.settings
    runtime_engine: AsyncEngine = app.state.engine
    app.state.runtime_engine = runtime_engine  # still backs the readiness check
    engine = create_async_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_size,
        pool_pre_ping=settings.database_pre_ping,
        pool_recycle=1800,
        connect_args={"server_settings": {"application_name": settings.service_name}},
    )
    app.state.engine = engine  # disposed by the runtime at shutdown
    app.state.sessionmaker = create_sessionmaker(engine)
    app.state.read_sessionmaker = async_sessionmaker(
        engine.execution_options(isolation_level="AUTOCOMMIT"),
        expire_on_commit=False,
        autoflush=False,
    )


async def close_database(app: FastAPI) -> None:
    """Shutdown hook: the runtime disposes the engine in use; this disposes the one replaced."""
    runtime_engine: AsyncEngine | None = getattr(app.state, "runtime_engine", None)
    if runtime_engine is not None:
        await runtime_engine.dispose()


async def read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for routes that only read: each statement runs on its own, nothing to commit."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.read_sessionmaker
    async with sessionmaker() as session:
        yield session


ReadSessionDep = Annotated[AsyncSession, Depends(read_session, scope="function")]
