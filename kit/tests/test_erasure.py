"""`shopkit.erasure.ErasureGuard`: holders keep an erasure waiting, within a bound."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from shopkit.db import service_metadata
from shopkit.erasure import ErasedUserColumns, ErasureGuard
from shopkit.transient import is_transient
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase

from contracts import new_id


class _Base(DeclarativeBase):
    metadata = service_metadata()


class ErasedUser(ErasedUserColumns, _Base):
    pass


GUARD = ErasureGuard(ErasedUser, lock_space=0x4B4954, wait_seconds=0.5)


@pytest.fixture
async def tables(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(_Base.metadata.create_all)


async def _erased(sessionmaker: async_sessionmaker[AsyncSession], user_id: str) -> bool:
    async with sessionmaker() as session:
        return user_id in set((await session.scalars(select(ErasedUser.user_id))).all())


async def test_an_erasure_waits_for_the_holders_and_they_see_it_after(
    tables: None, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    user, other = new_id(), new_id()
    async with sessionmaker() as holder, holder.begin():
        assert await GUARD.hold_many(holder, [user, other]) == set()
        async with sessionmaker() as eraser:
            erasing = asyncio.create_task(GUARD.remember(eraser, user, datetime.now(UTC)))
            await asyncio.sleep(0.2)
            assert not erasing.done()  # held: the holder's data is scrubbed after it commits
            await holder.commit()
            await erasing
    assert await _erased(sessionmaker, user)
    async with sessionmaker() as later, later.begin():
        assert await GUARD.hold_many(later, [user, other]) == {user}
        assert await GUARD.hold(later, user) is True
        assert await GUARD.hold(later, other) is False


async def test_an_erasure_held_too_long_gives_up_with_a_transient_error(
    tables: None, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Its consumer then replays the batch one message at a time: an endless wait here could be
    a cycle through a row its own transaction holds, which PostgreSQL cannot detect."""
    user = new_id()
    async with sessionmaker() as holder, holder.begin():
        await GUARD.hold(holder, user)
        async with sessionmaker() as eraser:
            with pytest.raises(DBAPIError, match="lock timeout") as raised:
                await asyncio.wait_for(GUARD.remember(eraser, user, datetime.now(UTC)), 10)
    assert is_transient(raised.value), repr(raised.value)
    assert not await _erased(sessionmaker, user)
