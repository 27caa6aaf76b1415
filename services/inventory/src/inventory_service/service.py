"""Stock rules: reservations for the checkout saga, their settlement, and manual stock levels.

Every function runs inside the caller's transaction and returns the events its change causes;
the caller writes them to the outbox in that same transaction. Each saga step is idempotent and
order-tolerant: the reservation row of an order says what has already happened to it, and an
event that no longer fits that state changes nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from contracts.events.inventory import (
    ReleaseReason,
    StockCommitted,
    StockLevelChanged,
    StockLine,
    StockLow,
    StockReleased,
    StockReservationExtended,
    StockReservationFailed,
    StockReserved,
    UnavailableLine,
)
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Event, new_id
from inventory_service import repository
from inventory_service.config import InventorySettings
from inventory_service.errors import (
    BelowReservedError,
    ReservationNotFoundError,
    StockNotFoundError,
)
from inventory_service.models import StockAdjustment
from inventory_service.repository import ReservationRow, Stock

HELD, COMMITTED, RELEASED, FAILED = "held", "committed", "released", "failed"


@dataclass(frozen=True, slots=True)
class StockPolicy:
    reservation_ttl: timedelta
    extension: timedelta
    low_stock_threshold: int

    @classmethod
    def from_settings(cls, settings: InventorySettings) -> StockPolicy:
        return cls(
            reservation_ttl=timedelta(seconds=settings.reservation_ttl_seconds),
            extension=timedelta(seconds=settings.reservation_extension_seconds),
            low_stock_threshold=settings.low_stock_threshold,
        )

    def threshold(self, stock: Stock) -> int:
        if stock.low_stock_threshold is None:
            return self.low_stock_threshold
        return stock.low_stock_threshold


def _quantities(lines: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Quantity per sku (an order may list one sku on several lines), in sku order."""
    totals: Counter[str] = Counter()
    for sku, quantity in lines:
        totals[sku] += quantity
    return dict(sorted(totals.items()))


def _stock_lines(lines: Iterable[tuple[str, int]]) -> list[StockLine]:
    return [StockLine(sku=sku, quantity=quantity) for sku, quantity in lines]


def _became_low(policy: StockPolicy, before: Stock, after: Stock) -> StockLow | None:
    """Announced once, when availability crosses below the threshold (not on every sale)."""
    threshold = policy.threshold(after)
    if after.available < threshold and before.available >= policy.threshold(before):
        return StockLow(sku=after.sku, available=after.available, threshold=threshold)
    return None


async def reserve(
    session: AsyncSession,
    *,
    order_id: str,
    lines: Sequence[tuple[str, int]],
    policy: StockPolicy,
    now: datetime,
    correlation_id: str | None = None,
    placed_event_id: str | None = None,
) -> list[Event]:
    """Hold every line of an order, or nothing at all."""
    await repository.lock_orders(session, [order_id])
    if order_id in await repository.get_reservations(session, [order_id]):
        return []  # decided before, or released before the order arrived: nothing to hold
    wanted = _quantities(lines)
    stock = await repository.lock_stock(session, wanted)
    unavailable = [
        UnavailableLine(
            sku=sku,
            requested=quantity,
            available=max(stock[sku].available, 0) if sku in stock else 0,
        )
        for sku, quantity in wanted.items()
        if sku not in stock or stock[sku].available < quantity
    ]
    reservation_id = new_id()
    if unavailable:
        reason: Literal["out_of_stock", "unknown_sku"] = (
            "unknown_sku" if any(sku not in stock for sku in wanted) else "out_of_stock"
        )
        await repository.add_reservation(
            session,
            order_id=order_id,
            reservation_id=reservation_id,
            status=FAILED,
            reason=reason,
            expires_at=None,
            correlation_id=correlation_id,
            placed_event_id=placed_event_id,
            lines=(),
            now=now,
        )
        return [StockReservationFailed(order_id=order_id, unavailable=unavailable, reason=reason)]

    expires_at = now + policy.reservation_ttl
    await repository.add_to_counters(
        session, [(sku, 0, quantity, 0, 0) for sku, quantity in wanted.items()], now
    )
    await repository.add_reservation(
        session,
        order_id=order_id,
        reservation_id=reservation_id,
        status=HELD,
        reason=None,
        expires_at=expires_at,
        correlation_id=correlation_id,
        placed_event_id=placed_event_id,
        lines=list(wanted.items()),
        now=now,
    )
    events: list[Event] = [
        StockReserved(
            order_id=order_id,
            reservation_id=reservation_id,
            lines=_stock_lines(wanted.items()),
            expires_at=expires_at,
        )
    ]
    for sku, quantity in wanted.items():
        before = stock[sku]
        low = _became_low(policy, before, replace(before, reserved=before.reserved + quantity))
        if low is not None:
            events.append(low)
    return events


async def release(
    session: AsyncSession,
    *,
    order_id: str,
    reason: ReleaseReason,
    now: datetime,
    previous_status: str | None = None,
) -> list[Event]:
    """Give an order's held units back, exactly once (compensation)."""
    await repository.lock_orders(session, [order_id])
    current = (await repository.get_reservations(session, [order_id])).get(order_id)
    if current is None:
        # The release overtook its order: remember it, so the order never holds stock later.
        await repository.add_reservation(
            session,
            order_id=order_id,
            reservation_id=new_id(),
            status=RELEASED,
            reason=reason,
            expires_at=None,
            correlation_id=None,
            placed_event_id=None,
            lines=(),
            now=now,
        )
        return []
    if current.status == HELD:
        await repository.lock_stock(session, (sku for sku, _ in current.lines))
        await repository.add_to_counters(
            session, [(sku, 0, -quantity, 0, 0) for sku, quantity in current.lines], now
        )
        await repository.set_reservation_state(
            session, order_id=order_id, status=RELEASED, reason=reason, expires_at=None, now=now
        )
        return [_released(current, reason)]
    restock = reason == "order_cancelled" and previous_status == "CONFIRMED"
    if current.status == COMMITTED and restock:
        # A confirmed order cancelled before shipping: its units go back on the shelf.
        stock = await repository.lock_stock(session, (sku for sku, _ in current.lines))
        await repository.add_to_counters(
            session, [(sku, quantity, 0, -quantity, 0) for sku, quantity in current.lines], now
        )
        await repository.set_reservation_state(
            session, order_id=order_id, status=RELEASED, reason=reason, expires_at=None, now=now
        )
        restocked: list[Event] = [_released(current, reason)]
        for sku, quantity in current.lines:
            before = stock[sku]
            restocked.append(
                _level_changed(
                    replace(
                        before,
                        on_hand=before.on_hand + quantity,
                        committed=before.committed - quantity,
                    ),
                    delta=quantity,
                    reason="order_cancelled_restock",
                    now=now,
                )
            )
        return restocked
    return []  # already released, committed and shipped, or never held


async def commit(session: AsyncSession, *, order_id: str, now: datetime) -> list[Event]:
    """The order is confirmed: its held units leave stock for good."""
    await repository.lock_orders(session, [order_id])
    current = (await repository.get_reservations(session, [order_id])).get(order_id)
    if current is None or current.status != HELD:
        return []  # a confirmation for an order whose hold ended (or never began) moves nothing
    stock = await repository.lock_stock(session, (sku for sku, _ in current.lines))
    await repository.add_to_counters(
        session, [(sku, -quantity, -quantity, quantity, 0) for sku, quantity in current.lines], now
    )
    await repository.set_reservation_state(
        session, order_id=order_id, status=COMMITTED, reason=None, expires_at=None, now=now
    )
    events: list[Event] = [
        StockCommitted(
            order_id=order_id, reservation_id=current.id, lines=_stock_lines(current.lines)
        )
    ]
    for sku, quantity in current.lines:
        before = stock[sku]
        events.append(
            _level_changed(
                replace(
                    before,
                    on_hand=before.on_hand - quantity,
                    reserved=before.reserved - quantity,
                    committed=before.committed + quantity,
                ),
                delta=-quantity,
                reason="order_committed",
                now=now,
            )
        )
    return events


async def extend(
    session: AsyncSession, *, order_id: str, policy: StockPolicy, now: datetime
) -> list[Event]:
    """The customer must act on the payment (3-D Secure): keep the hold a while longer."""
    await repository.lock_orders(session, [order_id])
    current = (await repository.get_reservations(session, [order_id])).get(order_id)
    if current is None or current.status != HELD or current.expires_at is None:
        return []
    expires_at = max(current.expires_at, now + policy.extension)
    if expires_at == current.expires_at:
        return []
    await repository.set_reservation_state(
        session, order_id=order_id, status=HELD, reason=None, expires_at=expires_at, now=now
    )
    return [
        StockReservationExtended(
            order_id=order_id, reservation_id=current.id, expires_at=expires_at
        )
    ]


async def release_expired(
    session: AsyncSession, *, now: datetime, limit: int
) -> list[tuple[ReservationRow, StockReleased]]:
    """Release holds past their expiry; orders being worked on right now are left for later."""
    candidates = await repository.expired_held_reservations(session, now=now, limit=limit)
    locked = [
        order_id
        for order_id in sorted(candidates, key=repository.order_lock_key)
        if await repository.try_lock_order(session, order_id)
    ]
    rows = await repository.get_reservations(session, locked)
    due = [
        row
        for row in rows.values()
        if row.status == HELD and row.expires_at is not None and row.expires_at < now
    ]
    await repository.lock_stock(session, (sku for row in due for sku, _ in row.lines))
    await repository.add_to_counters(
        session, [(sku, 0, -quantity, 0, 0) for row in due for sku, quantity in row.lines], now
    )
    released = []
    for row in due:
        await repository.set_reservation_state(
            session,
            order_id=row.order_id,
            status=RELEASED,
            reason="expired",
            expires_at=None,
            now=now,
        )
        released.append((row, _released(row, "expired")))
    return released


async def record_product(session: AsyncSession, *, sku: str, product_id: str) -> None:
    """A new catalog product gets a stock row at zero (or claims the row set up before it)."""
    await repository.ensure_stock_row(session, sku=sku, product_id=product_id)


_UNCHANGED = object()


async def set_stock(
    session: AsyncSession,
    *,
    sku: str,
    on_hand: int,
    reason: str,
    actor_id: str,
    policy: StockPolicy,
    now: datetime,
    threshold: int | object | None = _UNCHANGED,
) -> tuple[Stock, list[Event]]:
    """Set the units on hand (counted stock), with the reason recorded in the audit trail."""
    await repository.ensure_stock_row(session, sku=sku, product_id=None)
    before = (await repository.lock_stock(session, [sku]))[sku]
    if on_hand < before.reserved:
        raise BelowReservedError(
            f"{sku} has {before.reserved} units reserved for open orders; "
            f"on_hand cannot be set to {on_hand}",
            reserved=before.reserved,
        )
    new_threshold = before.low_stock_threshold if threshold is _UNCHANGED else threshold
    assert new_threshold is None or isinstance(new_threshold, int)
    delta = on_hand - before.on_hand
    if delta == 0 and new_threshold == before.low_stock_threshold:
        return before, []
    await repository.add_to_counters(session, [(sku, delta, 0, 0, delta)], now)
    if new_threshold != before.low_stock_threshold:
        await repository.set_threshold(session, sku=sku, threshold=new_threshold)
    await repository.add_adjustment(
        session,
        id=new_id(),
        sku=sku,
        previous_on_hand=before.on_hand,
        new_on_hand=on_hand,
        delta=delta,
        previous_threshold=before.low_stock_threshold,
        new_threshold=new_threshold,
        reason=reason,
        actor_id=actor_id,
        created_at=now,
    )
    after = replace(
        before,
        on_hand=on_hand,
        received=before.received + delta,
        low_stock_threshold=new_threshold,
        updated_at=now,
    )
    events: list[Event] = []
    if delta:
        events.append(_level_changed(after, delta=delta, reason=reason, now=now))
    low = _became_low(policy, before, after)
    if low is not None:
        events.append(low)
    return after, events


async def get_stock(session: AsyncSession, *, sku: str) -> Stock:
    stock = await repository.get_stock(session, sku)
    if stock is None:
        raise StockNotFoundError(f"no stock record for sku {sku!r}")
    return stock


async def list_stock(session: AsyncSession, *, after: str | None, limit: int) -> list[Stock]:
    return await repository.list_stock(session, after=after, limit=limit)


async def get_reservation(session: AsyncSession, *, order_id: str) -> ReservationRow:
    row = (await repository.get_reservations(session, [order_id])).get(order_id)
    if row is None:
        raise ReservationNotFoundError(f"no reservation for order {order_id}")
    return row


def _released(row: ReservationRow, reason: ReleaseReason) -> StockReleased:
    return StockReleased(
        order_id=row.order_id, reservation_id=row.id, lines=_stock_lines(row.lines), reason=reason
    )


def _level_changed(after: Stock, *, delta: int, reason: str, now: datetime) -> StockLevelChanged:
    return StockLevelChanged(
        sku=after.sku,
        on_hand=after.on_hand,
        reserved=after.reserved,
        available=after.available,
        delta=delta,
        reason=reason,
        changed_at=now,
    )


async def list_adjustments(
    session: AsyncSession, *, sku: str, before: str | None, limit: int
) -> list[StockAdjustment]:
    return await repository.list_adjustments(session, sku=sku, before=before, limit=limit)
