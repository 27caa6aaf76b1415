"""`shopkit.db.insert_new`: a new object's row, written without the unit of work."""

from __future__ import annotations

from datetime import datetime

from shopkit.db import insert_new, service_metadata
from sqlalchemy import DateTime, Integer, String, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class _Base(DeclarativeBase):
    metadata = service_metadata()


class Parcel(_Base):
    __tablename__ = "insert_new_parcels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # An attribute whose column has another name: the row must get it under the column's.
    label: Mapped[str] = mapped_column("name", String(40))
    weight: Mapped[int] = mapped_column(Integer, default=7)
    note: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


async def test_the_set_columns_are_written_and_the_others_take_their_defaults(
    engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(_Base.metadata.create_all)
    parcel = Parcel(label="fragile", note=None)

    async with sessionmaker() as session, session.begin():
        await insert_new(session, parcel)
        assert parcel not in session  # recorded, not tracked: nothing left to flush

    async with sessionmaker() as session:
        stored = (await session.scalars(select(Parcel))).one()
    assert stored.label == "fragile"
    assert stored.weight == 7  # the column's Python default, as a flush would apply it
    assert stored.note is None
    assert stored.created_at is not None  # the server default
