"""What a deleted account leaves in the orders database: found, replaced or deleted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shopkit.db import table_of
from shopkit.erasure import ErasureGuard
from sqlalchemy import Text, delete, or_, select, update
from sqlalchemy.dialects.postgresql import JSONB, array
from sqlalchemy.ext.asyncio import AsyncSession

from orders_service.models import (
    Cart,
    ErasedUser,
    IdempotencyKey,
    Order,
    OrderStatusChange,
    TimelineEvent,
)

_orders = table_of(Order)
_carts = table_of(Cart)
_history = table_of(OrderStatusChange)
_idempotency = table_of(IdempotencyKey)
_timeline = table_of(TimelineEvent)

ERASURES = ErasureGuard(ErasedUser, lock_space=0x4F5244)  # "ORD"
"""`ERASURES.hold_many(session, user_ids)` before the timeline stores a batch's personal fields
(see `shopkit.erasure`); `ERASURES.remember` when the account is deleted."""


@dataclass(frozen=True, slots=True)
class OrderToAnonymise:
    id: str
    shipping_address: dict[str, Any]


async def orders_to_anonymise(session: AsyncSession, user_id: str) -> list[OrderToAnonymise]:
    """The user's orders not anonymised yet, row-locked: a saga step running meanwhile waits,
    then reads the anonymised address (it never writes back the one it read before)."""
    rows = await session.execute(
        select(_orders.c.id, _orders.c.shipping_address)
        .where(_orders.c.user_id == user_id, _orders.c.anonymised_at.is_(None))
        .order_by(_orders.c.id)
        .with_for_update()
    )
    return [OrderToAnonymise(row.id, row.shipping_address) for row in rows]


async def order_ids_of(session: AsyncSession, user_id: str) -> list[str]:
    rows = await session.scalars(select(_orders.c.id).where(_orders.c.user_id == user_id))
    return list(rows)


async def anonymise_order(
    session: AsyncSession, order_id: str, *, shipping_address: dict[str, Any], now: datetime
) -> None:
    await session.execute(
        update(_orders)
        .where(_orders.c.id == order_id)
        .values(
            shipping_address=shipping_address,
            customer_ip=None,
            # The note the customer wrote when asking to cancel is theirs; its kind is not.
            cancellation_note=_orders.c.cancellation_reason,
            anonymised_at=now,
            updated_at=now,
        )
    )


async def replace_own_notes(
    session: AsyncSession, *, user_id: str, order_ids: Sequence[str], reason: str
) -> None:
    """Replace the free-text notes the user wrote when cancelling (kept as the history reason)."""
    if order_ids:
        await session.execute(
            update(_history)
            .where(
                _history.c.order_id.in_(order_ids),
                _history.c.actor == user_id,
                _history.c.to_status == "CANCELLED",
                _history.c.reason != reason,
            )
            .values(reason=reason)
        )


async def delete_carts(session: AsyncSession, user_id: str) -> list[int]:
    """Delete the user's cart (its items go with it); returns the versions deleted."""
    result = await session.execute(
        delete(_carts).where(_carts.c.user_id == user_id).returning(_carts.c.version)
    )
    return [int(version) for version in result.scalars()]


async def delete_idempotency_keys(session: AsyncSession, user_id: str) -> None:
    # Each recorded response is a copy of the order as placed, address included.
    await session.execute(delete(_idempotency).where(_idempotency.c.user_id == user_id))


async def scrub_timeline(
    session: AsyncSession, *, user_id: str, order_ids: Sequence[str], keys: Sequence[str]
) -> None:
    """Drop `keys` from the recorded data of the user's events: those keyed by the user
    (users, auth, notifications) or by one of their orders (the order events). The timeline
    stores the events it records after the erasure the same way
    (`service.timeline.without_personal_fields`)."""
    subjects = [user_id, *order_ids]
    await session.execute(
        update(_timeline)
        .where(
            _timeline.c.subject.in_(subjects),
            _timeline.c.data["user_id"].astext == user_id,
            or_(*(_timeline.c.data.has_key(key) for key in keys)),
        )
        .values(data=_timeline.c.data.op("-", return_type=JSONB)(array(keys, type_=Text)))
    )
