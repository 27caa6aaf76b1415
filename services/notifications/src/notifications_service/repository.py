"""Every query of the notifications service."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from shopkit.db import table_of
from sqlalchemy import (
    DateTime,
    Integer,
    String,
    bindparam,
    case,
    func,
    literal,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

from notifications_service.models import Delivery, DeliveryAttempt, OrderOwner, Recipient

_ORDER_OWNERS = table_of(OrderOwner)
_DELIVERIES = table_of(Delivery)
_ATTEMPTS = table_of(DeliveryAttempt)


async def recipient(
    session: AsyncSession, user_id: str, *, for_update: bool = False
) -> Recipient | None:
    return await session.get(Recipient, user_id, with_for_update=for_update)


async def erased(session: AsyncSession, user_id: str) -> bool:
    """Whether the user's account was deleted, as committed now (never a copy the session
    already holds)."""
    deleted_at = await session.scalar(
        select(Recipient.deleted_at).where(Recipient.user_id == user_id)
    )
    return deleted_at is not None


async def ensure_recipient(session: AsyncSession, user_id: str) -> Recipient:
    """The user's row, created empty if this is the first we hear of them; locked."""
    # Changes to the row not written yet (a handler that already holds it, then queues) would
    # be lost to the reload below.
    await session.flush()
    await session.execute(
        insert(Recipient)
        .values(user_id=user_id)
        .on_conflict_do_nothing(index_elements=[Recipient.user_id])
    )
    found = await session.get(Recipient, user_id, with_for_update=True, populate_existing=True)
    assert found is not None
    return found


# What every order's messages run: built once, with bound parameters, and on the tables where
# no mapped object is wanted back.
_REMEMBER_ORDER_OWNER = (
    insert(_ORDER_OWNERS)
    .values(order_id=bindparam("order_id"), user_id=bindparam("user_id"))
    .on_conflict_do_nothing(index_elements=[_ORDER_OWNERS.c.order_id])
)
_DELIVERY_COLUMNS = (
    "id",
    "user_id",
    "order_id",
    "source_event_id",
    "source_type",
    "template",
    "channel",
    "address",
    "language",
    "context",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
    "updated_at",
)
_INSERT_DELIVERY = (
    insert(_DELIVERIES)
    .values({name: bindparam(name) for name in _DELIVERY_COLUMNS})
    .on_conflict_do_nothing(constraint="uq_deliveries_event_channel")
    .returning(_DELIVERIES.c.id)
)
_INSERT_ATTEMPT = insert(_ATTEMPTS).values(
    delivery_id=bindparam("delivery_id"),
    attempt=bindparam("attempt"),
    outcome=bindparam("outcome"),
    error=bindparam("error"),
)
_NOW = bindparam("now", type_=DateTime(timezone=True))
_CLAIM_DUE = (
    update(Delivery)
    .where(
        Delivery.id.in_(
            select(Delivery.id)
            .where(Delivery.status == "pending", Delivery.next_attempt_at <= _NOW)
            .order_by(Delivery.next_attempt_at)
            .limit(bindparam("limit", type_=Integer))
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
    )
    .values(
        status="sending",
        lease_until=bindparam("lease_until"),
        attempts=Delivery.attempts + 1,
        first_attempt_at=func.coalesce(Delivery.first_attempt_at, _NOW),
        updated_at=_NOW,
    )
    .returning(Delivery)
)


async def remember_order_owner(session: AsyncSession, *, order_id: str, user_id: str) -> None:
    await session.execute(_REMEMBER_ORDER_OWNER, {"order_id": order_id, "user_id": user_id})


async def order_owner(session: AsyncSession, order_id: str) -> str | None:
    owner = await session.get(OrderOwner, order_id)
    return owner.user_id if owner else None


async def insert_delivery(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Claim the (source event, channel) key; False when a delivery for it already exists."""
    return (await session.execute(_INSERT_DELIVERY, values)).scalar_one_or_none() is not None


async def claim_due(
    session: AsyncSession, *, now: datetime, lease_until: datetime, limit: int
) -> list[Delivery]:
    """Lease due deliveries to this sender (others skip the locked rows), counting the attempt."""
    rows = await session.scalars(
        _CLAIM_DUE, {"now": now, "lease_until": lease_until, "limit": limit}
    )
    return list(rows)


CONTEXT_WITHOUT_RESET_TOKEN = Delivery.context.op("-", return_type=JSONB)(
    literal("reset_token", String)
)
"""The delivery's context as stored at write time, less its reset token: what every delivery
that ended keeps (a reset link is never sent again, see `log.resend`)."""


async def expire_leases(session: AsyncSession, *, now: datetime) -> list[str]:
    """Deliveries whose sender vanished mid-send: moved to `uncertain`, never resent blindly."""
    rows = await session.scalars(
        update(Delivery)
        .where(Delivery.status == "sending", Delivery.lease_until < now)
        .values(
            status="uncertain",
            lease_until=None,
            updated_at=now,
            last_error="sender stopped between claiming and recording the send",
            context=CONTEXT_WITHOUT_RESET_TOKEN,
        )
        .returning(Delivery.id)
    )
    return list(rows)


async def give_back(
    session: AsyncSession, *, claims: Sequence[tuple[str, int]], now: datetime
) -> list[str]:
    """Return claimed deliveries, by (id, attempt claimed), to the queue, due now and with the
    attempt uncounted: nothing was attempted. Fenced like `finish`, so one whose outcome was
    marked meanwhile is left alone."""
    rows = await session.scalars(
        update(Delivery)
        .where(
            tuple_(Delivery.id, Delivery.attempts).in_(list(claims)),
            Delivery.status == "sending",
        )
        .values(
            status="pending",
            lease_until=None,
            attempts=Delivery.attempts - 1,
            # Nor did its window of retries start, if this was to be its first attempt.
            first_attempt_at=case((Delivery.attempts == 1, None), else_=Delivery.first_attempt_at),
            next_attempt_at=now,
            updated_at=now,
        )
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    )
    return list(rows)


async def finish(
    session: AsyncSession, *, delivery_id: str, attempt: int, values: dict[str, Any]
) -> Delivery | None:
    """Record a send's outcome, fenced by the attempt that was claimed.

    Accepted from `sending` and from `uncertain` (a slow send whose lease ran out still knows
    best what happened); never over a later attempt or a finished state.

    Outcomes are marked in sessions of their own, which hold no earlier copy of the delivery
    to bring up to date: the ORM's evaluation of the criteria against loaded objects (a
    measurable share of this statement's cost) is skipped."""
    row = await session.scalars(
        update(Delivery)
        .where(
            Delivery.id == delivery_id,
            Delivery.attempts == attempt,
            Delivery.status.in_(("sending", "uncertain")),
        )
        .values(**values)
        .returning(Delivery)
        .execution_options(synchronize_session=False)
    )
    return row.one_or_none()


async def add_attempt(
    session: AsyncSession, *, delivery_id: str, attempt: int, outcome: str, error: str | None
) -> None:
    await session.execute(
        _INSERT_ATTEMPT,
        {"delivery_id": delivery_id, "attempt": attempt, "outcome": outcome, "error": error},
    )


async def deliveries_of_user(
    session: AsyncSession, user_id: str, *, limit: int, before: str | None = None
) -> list[Delivery]:
    statement = select(Delivery).where(Delivery.user_id == user_id)
    if before:
        statement = statement.where(Delivery.id < before)
    return list(await session.scalars(statement.order_by(Delivery.id.desc()).limit(limit)))


async def deliveries(
    session: AsyncSession,
    *,
    user_id: str | None,
    status: str | None,
    limit: int,
    before: str | None,
) -> list[Delivery]:
    statement = select(Delivery)
    if user_id:
        statement = statement.where(Delivery.user_id == user_id)
    if status:
        statement = statement.where(Delivery.status == status)
    if before:
        statement = statement.where(Delivery.id < before)
    return list(await session.scalars(statement.order_by(Delivery.id.desc()).limit(limit)))


async def attempts_of(
    session: AsyncSession, delivery_ids: Sequence[str]
) -> dict[str, list[DeliveryAttempt]]:
    rows = await session.scalars(
        select(DeliveryAttempt)
        .where(DeliveryAttempt.delivery_id.in_(list(delivery_ids)))
        .order_by(DeliveryAttempt.seq)
    )
    found: dict[str, list[DeliveryAttempt]] = {i: [] for i in delivery_ids}
    for row in rows:
        found[row.delivery_id].append(row)
    return found


async def get_delivery(
    session: AsyncSession, delivery_id: str, *, for_update: bool = False
) -> Delivery | None:
    return await session.get(Delivery, delivery_id, with_for_update=for_update)


ERASED_ERROR = "error text erased with the account"
"""What a deleted user's log shows instead of a provider's words, which quote the address."""


async def forget_user_deliveries(session: AsyncSession, *, user_id: str, now: datetime) -> None:
    """Drop personal data from a deleted user's log; unsent messages will never go out.

    What happened and when stays (statuses, attempts, outcomes, times): only addresses,
    contents and error texts go."""
    of_user = Delivery.user_id == user_id
    # First, and before the attempts: this waits for an outcome being marked on one of these
    # rows (the mark holds the row until it commits), so the attempts statement below, which
    # reads afresh, sees the attempt that outcome added.
    await session.execute(
        update(Delivery)
        .where(of_user)
        .values(
            address=None,
            context={},
            last_error=case((Delivery.last_error.is_(None), None), else_=ERASED_ERROR),
        )
    )
    await session.execute(
        update(Delivery)
        .where(of_user, Delivery.status.in_(("pending", "failed", "uncertain")))
        .values(status="skipped", last_error="account deleted", updated_at=now)
    )
    await session.execute(
        update(DeliveryAttempt)
        .where(
            DeliveryAttempt.delivery_id.in_(select(Delivery.id).where(of_user)),
            DeliveryAttempt.error.is_not(None),
        )
        .values(error=ERASED_ERROR)
    )
