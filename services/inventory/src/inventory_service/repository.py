"""Every query of the inventory service.

Lock discipline (so concurrent transactions never wait on each other in a cycle): first the
orders a transaction touches, as transaction-level advisory locks in ascending key order; then
the stock rows it touches, in one `SELECT ... ORDER BY sku FOR UPDATE`. Nothing that holds a
stock row lock ever waits for an order lock; the sweeper only *tries* order locks.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from shopkit.db import equals_any, table_of
from sqlalchemy import String, bindparam, insert, select, text, update
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from inventory_service.book import ReservationState, StockBook, StockLevel
from inventory_service.models import Reservation, ReservationLine, StockAdjustment, StockItem

# Core tables for bulk statements: one executemany instead of per-object ORM flushes.
_STOCK = table_of(StockItem)
_RESERVATIONS = table_of(Reservation)
_RESERVATION_LINES = table_of(ReservationLine)
_ADJUSTMENTS = table_of(StockAdjustment)

ORDER_LOCK_SPACE = 0x494E56  # "INV": the first key of our two-key advisory locks

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

# The batch statements of the saga, built once (their batches vary in size).
_LOCK_STOCK = (
    select(*_STOCK_COLUMNS)
    .where(equals_any(StockItem.sku, "skus", String()))
    .order_by(StockItem.sku)
    .with_for_update()
)
_RESERVATIONS_OF = select(
    Reservation.order_id,
    Reservation.id,
    Reservation.status,
    Reservation.reason,
    Reservation.expires_at,
    Reservation.correlation_id,
    Reservation.placed_event_id,
).where(equals_any(Reservation.order_id, "order_ids", UUID(as_uuid=False)))
_LINES_OF = (
    select(ReservationLine.order_id, ReservationLine.sku, ReservationLine.quantity)
    .where(equals_any(ReservationLine.order_id, "order_ids", UUID(as_uuid=False)))
    .order_by(ReservationLine.order_id, ReservationLine.sku)
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


async def ensure_stock_rows(session: AsyncSession, skus: Iterable[str]) -> None:
    """Create missing rows at zero (stock may be set, or a product created, in either order)."""
    wanted = sorted(set(skus))
    if wanted:
        # Many parameter sets for one statement compiled once (a VALUES list recompiles).
        await session.execute(
            pg_insert(_STOCK).on_conflict_do_nothing(index_elements=["sku"]),
            [{"sku": sku} for sku in wanted],
        )


async def load_book(
    session: AsyncSession, *, order_ids: Iterable[str] = (), skus: Iterable[str] = ()
) -> StockBook:
    """Lock the orders, then every stock row they or `skus` touch (in that order), and load them."""
    orders = sorted(set(order_ids))
    await lock_orders(session, orders)
    reservations = await _reservations(session, orders)
    wanted = set(skus) | {sku for r in reservations.values() for sku, _ in r.lines}
    stock: dict[str, StockLevel] = {}
    if wanted:
        rows = await session.execute(_LOCK_STOCK, {"skus": sorted(wanted)})
        stock = {row.sku: StockLevel(*row) for row in rows}
    return StockBook(stock=stock, reservations=reservations)


async def _reservations(session: AsyncSession, order_ids: list[str]) -> dict[str, ReservationState]:
    if not order_ids:
        return {}
    rows = (await session.execute(_RESERVATIONS_OF, {"order_ids": order_ids})).all()
    lines: dict[str, list[tuple[str, int]]] = {}
    if rows:
        for order_id, sku, quantity in await session.execute(
            _LINES_OF, {"order_ids": [row.order_id for row in rows]}
        ):
            lines.setdefault(order_id, []).append((sku, quantity))
    return {
        row.order_id: ReservationState(*row, lines=tuple(lines.get(row.order_id, ())))
        for row in rows
    }


async def save_book(session: AsyncSession, book: StockBook) -> None:
    """Write back what changed: a handful of bulk statements whatever the batch size."""
    if book.changed_stock:
        await session.execute(
            update(_STOCK)
            .where(_STOCK.c.sku == bindparam("b_sku"))
            .values(
                product_id=bindparam("b_product_id"),
                on_hand=bindparam("b_on_hand"),
                reserved=bindparam("b_reserved"),
                committed=bindparam("b_committed"),
                received=bindparam("b_received"),
                low_stock_threshold=bindparam("b_threshold"),
                updated_at=bindparam("b_updated_at"),
            ),
            [
                {
                    "b_sku": level.sku,
                    "b_product_id": level.product_id,
                    "b_on_hand": level.on_hand,
                    "b_reserved": level.reserved,
                    "b_committed": level.committed,
                    "b_received": level.received,
                    "b_threshold": level.low_stock_threshold,
                    "b_updated_at": level.updated_at,
                }
                for level in (book.stock[sku] for sku in sorted(book.changed_stock))
            ],
        )
    new = [book.reservations[order_id] for order_id in book.new_reservations]
    if new:
        await session.execute(
            insert(_RESERVATIONS),
            [
                {
                    "order_id": r.order_id,
                    "id": r.id,
                    "status": r.status,
                    "reason": r.reason,
                    "expires_at": r.expires_at,
                    "correlation_id": r.correlation_id,
                    "placed_event_id": r.placed_event_id,
                }
                for r in new
            ],
        )
        lines = [
            {"order_id": r.order_id, "sku": sku, "quantity": quantity}
            for r in new
            for sku, quantity in r.lines
        ]
        if lines:
            await session.execute(insert(_RESERVATION_LINES), lines)
    if book.changed_reservations:
        await session.execute(
            update(_RESERVATIONS)
            .where(_RESERVATIONS.c.order_id == bindparam("b_order_id"))
            .values(
                status=bindparam("b_status"),
                reason=bindparam("b_reason"),
                expires_at=bindparam("b_expires_at"),
                updated_at=text("now()"),
            ),
            [
                {
                    "b_order_id": r.order_id,
                    "b_status": r.status,
                    "b_reason": r.reason,
                    "b_expires_at": r.expires_at,
                }
                for r in (book.reservations[o] for o in sorted(book.changed_reservations))
            ],
        )
    if book.adjustments:
        await session.execute(
            insert(_ADJUSTMENTS),
            [
                {
                    "id": a.id,
                    "sku": a.sku,
                    "previous_on_hand": a.previous_on_hand,
                    "new_on_hand": a.new_on_hand,
                    "delta": a.delta,
                    "previous_threshold": a.previous_threshold,
                    "new_threshold": a.new_threshold,
                    "reason": a.reason,
                    "actor_id": a.actor_id,
                    "created_at": a.created_at,
                }
                for a in book.adjustments
            ],
        )
    book.changed_stock.clear()
    book.new_reservations.clear()
    book.changed_reservations.clear()
    book.adjustments.clear()


async def get_stock(session: AsyncSession, sku: str) -> StockLevel | None:
    row = (await session.execute(select(*_STOCK_COLUMNS).where(StockItem.sku == sku))).first()
    return StockLevel(*row) if row else None


async def list_stock(session: AsyncSession, *, after: str | None, limit: int) -> list[StockLevel]:
    query = select(*_STOCK_COLUMNS).order_by(StockItem.sku).limit(limit)
    if after is not None:
        query = query.where(StockItem.sku > after)
    return [StockLevel(*row) for row in await session.execute(query)]


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


async def get_reservation(session: AsyncSession, order_id: str) -> ReservationState | None:
    return (await _reservations(session, [order_id])).get(order_id)


async def expired_held_reservations(
    session: AsyncSession, *, before: datetime, limit: int
) -> list[str]:
    """Orders whose hold expires before `before`, soonest first."""
    result = await session.execute(
        select(Reservation.order_id)
        .where(Reservation.status == "held", Reservation.expires_at < before)
        .order_by(Reservation.expires_at)
        .limit(limit)
    )
    return list(result.scalars())
