"""Account erasure against writes racing it, in a service's PostgreSQL database.

A deleted account's personal data is scrubbed by the service's `UserDeletionRequested`
handler, but an event of one of its orders may be handled at the same moment or later (it comes
on another topic): what that write stores must not outlive the erasure. Each service keeps a
table of erased accounts (a model with `user_id` and `erased_at`) and an `ErasureGuard` on it:

- a transaction about to store a user's personal data calls `hold(session, user_id)` first: it
  takes the user's advisory lock shared, until the transaction ends, and answers whether the
  account is erased (then the data is not stored);
- the erasure calls `remember(session, user_id, now)`, which records the account in a
  transaction of its own, committed before the erasure scrubs in `session`: the lock taken
  exclusively there waits for every holder.

A holder either sees the record, or commits before it is written and so before the scrub reads.
The erasure must not run in a transaction that holds the user (it would wait for itself): its
handler belongs to a consumer group of its own. Nor can it wait without end: its own transaction
may hold rows (the scrub of an earlier account of its batch) that a holder waits for, a cycle
PostgreSQL cannot see (one side waits in Python, on another connection). `remember` gives up
after `wait_seconds` with a transient error; the consumer then applies the batch one message at
a time, and alone the erasure holds nothing before it records the account.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy import DateTime, bindparam, cast, func, literal, select, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID, insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from shopkit.problems import ForbiddenError


class ErasedUserColumns:
    """The erased-accounts table, mixed into a service's model:
    `class ErasedUser(ErasedUserColumns, Base)`; its migration is `create_erased_users_table`."""

    __tablename__ = "erased_users"

    user_id: Mapped[str] = mapped_column(UUID(as_uuid=False), primary_key=True)
    erased_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


def create_erased_users_table() -> None:
    """In a service's migration: the table `ErasedUserColumns` maps."""
    op.create_table(
        "erased_users",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_erased_users"),
    )


class AccountDeletedError(ForbiddenError):
    """The account was deleted: its token may still be valid for a moment (auth revokes it in
    its own consumer), but it writes nothing more."""

    slug = "account-deleted"
    title = "This account has been deleted"


class ErasureGuard:
    def __init__(self, model: Any, *, lock_space: int, wait_seconds: float = 10.0) -> None:
        """`model`: the service's erased-accounts model (`user_id` primary key, `erased_at`);
        `lock_space`: the first key of the two-key advisory locks, unique to the service;
        `wait_seconds`: how long `remember` waits for the transactions holding the user."""
        self._model = model
        # SET cannot take a bound parameter; the value is a number formatted here.
        self._wait = text(f"SET LOCAL lock_timeout = '{int(wait_seconds * 1000)}ms'")
        self._hold = text(
            "SELECT pg_advisory_xact_lock_shared(:space, hashtext(:user_id))"
        ).bindparams(space=lock_space)
        self._take = text("SELECT pg_advisory_xact_lock(:space, hashtext(:user_id))").bindparams(
            space=lock_space
        )
        self._is_erased = select(literal(True)).where(model.user_id == bindparam("user_id"))
        # Sorted: two transactions holding several users take their locks in one order, so an
        # erasure queued on one of them cannot close a cycle between them.
        self._hold_many = text(
            "SELECT pg_advisory_xact_lock_shared(:space, hashtext(held.user_id))"
            " FROM (SELECT DISTINCT unnest(CAST(:user_ids AS text[])) AS user_id"
            " ORDER BY 1) AS held"
        ).bindparams(space=lock_space)
        self._erased_among = select(model.user_id).where(
            model.user_id == func.any(cast(bindparam("user_ids"), ARRAY(UUID(as_uuid=False))))
        )
        self._info_key = f"erasure-guard:{model.__tablename__}"
        """session.info key: (the transaction, {user id: erased}) of the users it holds."""

    async def hold(self, session: AsyncSession, user_id: str) -> bool:
        """Keep the user's erasure waiting until this transaction ends; True if the account is
        erased already. Asked again in the same transaction, the answer cannot have changed
        (the lock is still held), so it is not asked of the database again."""
        held: tuple[object, dict[str, bool]] | None = session.info.get(self._info_key)
        if held is not None and held[0] is session.get_transaction() and user_id in held[1]:
            return held[1][user_id]
        await session.execute(self._hold, {"user_id": user_id})
        erased = bool(await session.scalar(self._is_erased, {"user_id": user_id}))
        transaction = session.get_transaction()  # begun by now, if it was not
        if held is None or held[0] is not transaction:
            held = session.info[self._info_key] = (transaction, {})
        held[1][user_id] = erased
        return erased

    async def hold_many(self, session: AsyncSession, user_ids: Collection[str]) -> set[str]:
        """`hold` for several users in two statements (a batch of events); returns the erased
        ones. Not cached: a batch asks once."""
        wanted = sorted(set(user_ids))
        if not wanted:
            return set()
        await session.execute(self._hold_many, {"user_ids": wanted})
        return set((await session.scalars(self._erased_among, {"user_ids": wanted})).all())

    async def remember(self, session: AsyncSession, user_id: str, now: datetime) -> None:
        """Record the account as erased, in a transaction of its own on `session`'s engine,
        committed when this returns: the caller scrubs after it, in `session`. Raises a
        transient error (lock not available) when the holders keep it waiting too long."""
        engine = session.bind
        assert isinstance(engine, AsyncEngine), "an engine-bound session can open another"
        async with engine.begin() as connection:
            await connection.execute(self._wait)
            await connection.execute(self._take, {"user_id": user_id})
            await connection.execute(
                insert(self._model)
                .values(user_id=user_id, erased_at=now)
                .on_conflict_do_nothing(index_elements=[self._model.user_id])
            )
