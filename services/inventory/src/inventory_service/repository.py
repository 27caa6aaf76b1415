"""Every query of the inventory service.

Lock discipline (so concurrent transactions never wait on each other in a cycle): first the
orders a transaction touches, as transaction-level advisory locks in ascending key order; then
the stock rows it touches, in one `SELECT ... ORDER BY sku FOR UPDATE`. Nothing that holds a
stock row lock ever waits for an order lock; the sweeper only *tries* order locks.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from inventory_service.models import Reservation, ReservationLine, StockAdjustment, StockItem

ORDER_LOCK_SPACE = 0x494E56  # "INV": the first key of our two-key advisory locks


@dataclass(frozen=True, slots=True)
class Stock:
    sku: str
    product_id: str | None
    on_hand: int
    reserved: int
    committed: int
    received: int
    low_stock_threshold: int | None
    updated_at: datetime

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


_STOCK_COLUMNS = (
    StockItem.sku,
    StockItem.product_id,
    StockItem.on_hand,
    StockItem.reserved,
    StockItem.committed,
    StockItem.received,
    StockItem.low_stock_threshold,
    StockItem.updated_at,
)


def order_lock_key(order_id: str) -> int:
    """A signed 32-bit key for an order (collisions only serialise two orders needlessly)."""
    try:
        raw = uuid.UUID(order_id).bytes
    except ValueError:
        raw = order_id.encode().ljust(16, b"\0")
    return int.from_bytes(raw[-4:], "big", signed=True)


async def lock_orders(session: AsyncSession, order_ids: Iterable[str]) -> None:
    keys = sorted({order_lock_key(order_id) for order_id in order_ids})
    if not keys:
        return
    # The inner ORDER BY fixes the order in which the locks are taken.
    await session.execute(
        text(
            "SELECT pg_advisory_xact_lock(:space, k) FROM "
            "(SELECT k FROM unnest(CAST(:keys AS integer[])) AS k ORDER BY k) AS ordered"
        ),
        {"space": ORDER_LOCK_SPACE, "keys": keys},
    )


async def try_lock_order(session: AsyncSession, order_id: str) -> bool:
    result = await session.execute(
        text("SELECT pg_try_advisory_xact_lock(:space, :key)"),
        {"space": ORDER_LOCK_SPACE, "key": order_lock_key(order_id)},
    )
    return bool(result.scalar_one())


async def lock_stock(session: AsyncSession, skus: Iterable[str]) -> dict[str, Stock]:
    """Lock the existing stock rows of `skus` (in sku order) and return them."""
    wanted = sorted(set(skus))
    if not wanted:
        return {}
    rows = await session.execute(
        select(*_STOCK_COLUMNS)
        .where(StockItem.sku.in_(wanted))
        .order_by(StockItem.sku)
        .with_for_update()
    )
    return {row.sku: Stock(*row) for row in rows}


async def get_stock(session: AsyncSession, sku: str) -> Stock | None:
    row = (await session.execute(select(*_STOCK_COLUMNS).where(StockItem.sku == sku))).first()
    return Stock(*row) if row else None


async def list_stock(session: AsyncSession, *, after: str | None, limit: int) -> list[Stock]:
    query = select(*_STOCK_COLUMNS).order_by(StockItem.sku).limit(limit)
    if after is not None:
        query = query.where(StockItem.sku > after)
    return [Stock(*row) for row in await session.execute(query)]


async def ensure_stock_row(session: AsyncSession, *, sku: str, product_id: str | None) -> None:
    """Create the sku's row at zero, or attach the product id to a row set up earlier."""
    statement = pg_insert(StockItem).values(sku=sku, product_id=product_id)
    if product_id is None:
        statement = statement.on_conflict_do_nothing(index_elements=[StockItem.sku])
    else:
        statement = statement.on_conflict_do_update(
            index_elements=[StockItem.sku],
            set_={"product_id": product_id},
            where=StockItem.product_id.is_(None),
        )
    await session.execute(statement)


async def add_to_counters(
    session: AsyncSession,
    changes: Sequence[tuple[str, int, int, int, int]],
    now: datetime,
) -> None:
    """Apply (sku, on_hand, reserved, committed, received) deltas to locked rows."""
    if not changes:
        return
    table = StockItem.metadata.tables[StockItem.__tablename__]
    # A Core executemany: one round trip for every line of an order.
    await session.execute(
        update(table)
        .where(table.c.sku == bindparam("b_sku"))
        .values(
            on_hand=table.c.on_hand + bindparam("b_on_hand"),
            reserved=table.c.reserved + bindparam("b_reserved"),
            committed=table.c.committed + bindparam("b_committed"),
            received=table.c.received + bindparam("b_received"),
            updated_at=now,
        ),
        [
            {
                "b_sku": sku,
                "b_on_hand": on_hand,
                "b_reserved": reserved,
                "b_committed": committed,
                "b_received": received,
            }
            for sku, on_hand, reserved, committed, received in changes
        ],
    )


async def set_threshold(session: AsyncSession, *, sku: str, threshold: int | None) -> None:
    await session.execute(
        update(StockItem).where(StockItem.sku == sku).values(low_stock_threshold=threshold)
    )


async def add_adjustment(session: AsyncSession, **values: object) -> None:
    await session.execute(insert(StockAdjustment).values(**values))


async def list_adjustments(
    session: AsyncSession, *, sku: str, before: str | None, limit: int
) -> list[StockAdjustment]:
    query = (
        select(StockAdjustment)
        .where(StockAdjustment.sku == sku)
        .order_by(StockAdjustment.id.desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(StockAdjustment.id < before)
    return list((await session.execute(query)).scalars())


@dataclass(frozen=True, slots=True)
class ReservationRow:
    order_id: str
    id: str
    status: str
    reason: str | None
    expires_at: datetime | None
    correlation_id: str | None
    placed_event_id: str | None
    lines: tuple[tuple[str, int], ...]


async def get_reservations(
    session: AsyncSession, order_ids: Iterable[str]
) -> dict[str, ReservationRow]:
    ids = list(set(order_ids))
    if not ids:
        return {}
    rows = (
        await session.execute(
            select(
                Reservation.order_id,
                Reservation.id,
                Reservation.status,
                Reservation.reason,
                Reservation.expires_at,
                Reservation.correlation_id,
                Reservation.placed_event_id,
            ).where(Reservation.order_id.in_(ids))
        )
    ).all()
    lines: dict[str, list[tuple[str, int]]] = {}
    if rows:
        for order_id, sku, quantity in await session.execute(
            select(ReservationLine.order_id, ReservationLine.sku, ReservationLine.quantity)
            .where(ReservationLine.order_id.in_([row.order_id for row in rows]))
            .order_by(ReservationLine.order_id, ReservationLine.sku)
        ):
            lines.setdefault(order_id, []).append((sku, quantity))
    return {
        row.order_id: ReservationRow(*row, lines=tuple(lines.get(row.order_id, ()))) for row in rows
    }


async def skus_of_reservations(session: AsyncSession, order_ids: Sequence[str]) -> set[str]:
    if not order_ids:
        return set()
    result = await session.execute(
        select(ReservationLine.sku).where(ReservationLine.order_id.in_(list(order_ids))).distinct()
    )
    return set(result.scalars())


async def add_reservation(
    session: AsyncSession,
    *,
    order_id: str,
    reservation_id: str,
    status: str,
    reason: str | None,
    expires_at: datetime | None,
    correlation_id: str | None,
    placed_event_id: str | None,
    lines: Sequence[tuple[str, int]],
    now: datetime,
) -> None:
    await session.execute(
        insert(Reservation).values(
            order_id=order_id,
            id=reservation_id,
            status=status,
            reason=reason,
            expires_at=expires_at,
            correlation_id=correlation_id,
            placed_event_id=placed_event_id,
            created_at=now,
            updated_at=now,
        )
    )
    if lines:
        await session.execute(
            insert(ReservationLine),
            [{"order_id": order_id, "sku": sku, "quantity": quantity} for sku, quantity in lines],
        )


async def set_reservation_state(
    session: AsyncSession,
    *,
    order_id: str,
    status: str,
    reason: str | None,
    expires_at: datetime | None,
    now: datetime,
) -> None:
    await session.execute(
        update(Reservation)
        .where(Reservation.order_id == order_id)
        .values(status=status, reason=reason, expires_at=expires_at, updated_at=now)
    )


async def expired_held_reservations(
    session: AsyncSession, *, now: datetime, limit: int
) -> list[str]:
    result = await session.execute(
        select(Reservation.order_id)
        .where(Reservation.status == "held", Reservation.expires_at < now)
        .order_by(Reservation.expires_at)
        .limit(limit)
    )
    return list(result.scalars())


async def totals(session: AsyncSession) -> dict[str, int]:
    """Sums over every sku (for invariant checks and the admin overview)."""
    row = (
        await session.execute(
            select(
                func.coalesce(func.sum(StockItem.on_hand), 0),
                func.coalesce(func.sum(StockItem.reserved), 0),
                func.coalesce(func.sum(StockItem.committed), 0),
                func.coalesce(func.sum(StockItem.received), 0),
            )
        )
    ).one()
    on_hand, reserved, committed, received = (int(v) for v in row)
    return {"on_hand": on_hand, "reserved": reserved, "committed": committed, "received": received}
