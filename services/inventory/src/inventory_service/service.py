"""Stock rules: reservations for the checkout saga, their settlement, and manual stock levels.

The saga rules work on a loaded `StockBook` (every row they may touch is locked and in memory)
and return the events their change causes; the caller saves the book and writes the events to
the outbox in the same transaction. Each step is idempotent and order-tolerant: the order's
reservation says what has already happened to it, and an event that no longer fits changes
nothing.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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
from contracts.ids import is_uuid7
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Event, new_id
from inventory_service import repository
from inventory_service.book import Adjustment, ReservationState, StockBook, StockLevel
from inventory_service.config import InventorySettings
from inventory_service.errors import (
    AboveMaximumError,
    BelowReservedError,
    ReservationNotFoundError,
    StockChangedError,
    StockNotFoundError,
)
from inventory_service.models import StockAdjustment

log = logging.getLogger(__name__)

HELD, COMMITTED, RELEASED, FAILED = "held", "committed", "released", "failed"

MAX_ON_HAND = 10_000_000
"""The most units a stock level may hold: what a PUT accepts, so an adjustment cannot reach a
level that a PUT (or its `expected_on_hand`) could not name, nor overflow the counters."""


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

    def threshold(self, stock: StockLevel) -> int:
        if stock.low_stock_threshold is None:
            return self.low_stock_threshold
        return stock.low_stock_threshold


def quantities(lines: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Quantity per sku (an order may list one sku on several lines), in sku order."""
    totals: Counter[str] = Counter()
    for sku, quantity in lines:
        totals[sku] += quantity
    return dict(sorted(totals.items()))


def _stock_lines(lines: Iterable[tuple[str, int]]) -> list[StockLine]:
    return [StockLine(sku=sku, quantity=quantity) for sku, quantity in lines]


def _became_low(policy: StockPolicy, before: StockLevel, after: StockLevel) -> StockLow | None:
    """Announced once, when availability crosses below the threshold (not on every sale)."""
    threshold = policy.threshold(after)
    if after.available < threshold and before.available >= policy.threshold(before):
        return StockLow(sku=after.sku, available=after.available, threshold=threshold)
    return None


def reserve(
    book: StockBook,
    *,
    order_id: str,
    lines: Sequence[tuple[str, int]],
    policy: StockPolicy,
    now: datetime,
    correlation_id: str | None = None,
    placed_event_id: str | None = None,
) -> list[Event]:
    """Hold every line of an order, or nothing at all."""
    if book.reservation(order_id) is not None:
        return []  # decided before, or released before the order arrived: nothing to hold
    wanted = quantities(lines)
    unavailable = []
    for sku, quantity in wanted.items():
        level = book.level(sku)
        if level is None or level.available < quantity:
            available = max(level.available, 0) if level else 0
            unavailable.append(UnavailableLine(sku=sku, requested=quantity, available=available))
    held = ReservationState(
        order_id=order_id,
        id=new_id(),
        status=HELD,
        reason=None,
        expires_at=now + policy.reservation_ttl,
        correlation_id=correlation_id,
        placed_event_id=placed_event_id,
        lines=tuple(wanted.items()),
    )
    if unavailable:
        reason: Literal["out_of_stock", "unknown_sku"] = (
            "unknown_sku" if any(book.level(sku) is None for sku in wanted) else "out_of_stock"
        )
        book.add_reservation(
            ReservationState(
                order_id=order_id,
                id=held.id,
                status=FAILED,
                reason=reason,
                expires_at=None,
                correlation_id=correlation_id,
                placed_event_id=placed_event_id,
                lines=(),
            )
        )
        return [StockReservationFailed(order_id=order_id, unavailable=unavailable, reason=reason)]

    events: list[Event] = []
    lows: list[Event] = []
    for sku, quantity in wanted.items():
        before = book.move(sku, reserved=quantity, now=now)
        low = _became_low(policy, before, book.stock[sku])
        if low is not None:
            lows.append(low)
    book.add_reservation(held)
    assert held.expires_at is not None
    events.append(
        StockReserved(
            order_id=order_id,
            reservation_id=held.id,
            lines=_stock_lines(held.lines),
            expires_at=held.expires_at,
        )
    )
    return events + lows


def release(
    book: StockBook,
    *,
    order_id: str,
    reason: ReleaseReason,
    now: datetime,
    restock: bool = False,
) -> list[Event]:
    """Give an order's held units back, exactly once (compensation).

    `restock`: shipping's word that nothing will ship (`ShipmentCancelled`), the only thing
    that puts a confirmed order's committed units back on the shelf. A cancelled order's own
    event cannot: its parcel may already be on its way, and restocking it would sell units that
    are gone."""
    current = book.reservation(order_id)
    if current is None:
        # The release overtook its order: remember it, so the order never holds stock later.
        book.add_reservation(
            ReservationState(
                order_id=order_id,
                id=new_id(),
                status=RELEASED,
                reason=reason,
                expires_at=None,
                correlation_id=None,
                placed_event_id=None,
                lines=(),
            )
        )
        return []
    if current.status == HELD:
        for sku, quantity in current.lines:
            book.move(sku, reserved=-quantity, now=now)
        book.update_reservation(order_id, status=RELEASED, reason=reason, expires_at=None)
        return [_released(current, reason)]
    if current.status == COMMITTED and restock:
        # A confirmed order cancelled before its parcel left: its units go back on the shelf.
        events: list[Event] = [_released(current, reason)]
        for sku, quantity in current.lines:
            book.move(sku, on_hand=quantity, committed=-quantity, now=now)
            events.append(_level_changed(book.stock[sku], quantity, "order_cancelled_restock", now))
        book.update_reservation(order_id, status=RELEASED, reason=reason, expires_at=None)
        return events
    return []  # already released, committed and shipped, or never held


def commit(book: StockBook, *, order_id: str, now: datetime) -> list[Event]:
    """The order is confirmed: its held units leave stock for good."""
    current = book.reservation(order_id)
    if current is not None and current.status == RELEASED and current.reason == "expired":
        # Orders confirmed a paid order whose stock this service already gave up: nothing is
        # held for it, and only an operator can settle it (ship from elsewhere, or refund).
        log.warning(
            "order confirmed after its reservation expired; no stock is committed for it",
            extra={"order_id": order_id, "reservation_id": current.id},
        )
    if current is None or current.status != HELD:
        return []  # a confirmation for an order whose hold ended (or never began) moves nothing
    events: list[Event] = [
        StockCommitted(
            order_id=order_id, reservation_id=current.id, lines=_stock_lines(current.lines)
        )
    ]
    for sku, quantity in current.lines:
        book.move(sku, on_hand=-quantity, reserved=-quantity, committed=quantity, now=now)
        events.append(_level_changed(book.stock[sku], -quantity, "order_committed", now))
    book.update_reservation(order_id, status=COMMITTED, reason=None, expires_at=None)
    return events


def extend(book: StockBook, *, order_id: str, policy: StockPolicy, now: datetime) -> list[Event]:
    """The customer must act on the payment (3-D Secure): keep the hold a while longer."""
    current = book.reservation(order_id)
    if current is None or current.status != HELD or current.expires_at is None:
        return []
    expires_at = max(current.expires_at, now + policy.extension)
    if expires_at == current.expires_at:
        return []
    book.update_reservation(order_id, expires_at=expires_at)
    return [
        StockReservationExtended(
            order_id=order_id, reservation_id=current.id, expires_at=expires_at
        )
    ]


def expire(
    book: StockBook, *, now: datetime, expired_before: datetime
) -> list[tuple[ReservationState, StockReleased]]:
    """Release every loaded hold whose expiry is before `expired_before`: the time up to which
    the saga's events are known to be applied (see `release_expired`), at most `now`."""
    released = []
    for current in list(book.reservations.values()):
        if (
            current.status == HELD
            and current.expires_at is not None
            and current.expires_at < expired_before
        ):
            for sku, quantity in current.lines:
                book.move(sku, reserved=-quantity, now=now)
            book.update_reservation(
                current.order_id, status=RELEASED, reason="expired", expires_at=None
            )
            released.append((current, _released(current, "expired")))
    return released


def record_product(book: StockBook, *, sku: str, product_id: str) -> None:
    """A new catalog product gets its stock row (at zero, or the one set up before it)."""
    level = book.level(sku)
    if level is not None and level.product_id is None:
        book.update_level(sku, product_id=product_id)


_UNCHANGED = object()


def set_level(
    book: StockBook,
    *,
    sku: str,
    on_hand: int,
    reason: str,
    actor_id: str,
    policy: StockPolicy,
    now: datetime,
    threshold: int | object | None = _UNCHANGED,
    expected_on_hand: int | None = None,
) -> list[Event]:
    """Set the units on hand (counted stock); the change goes to the audit trail.

    `expected_on_hand` is the level the admin's new value was worked out from. An absolute set
    would silently overwrite whatever changed on_hand since it was read (an order committed,
    a restock, another admin), so with it the set only applies if nothing did. The row is locked
    by now, so nothing can change it between this comparison and the write."""
    before = book.stock[sku]
    if expected_on_hand is not None and expected_on_hand != before.on_hand:
        raise StockChangedError(
            f"{sku} has {before.on_hand} units on hand, not the {expected_on_hand} expected; "
            "nothing was changed",
            expected_on_hand=expected_on_hand,
            on_hand=before.on_hand,
        )
    if on_hand < before.reserved:
        raise BelowReservedError(
            f"{sku} has {before.reserved} units reserved for open orders; "
            f"on_hand cannot go to {on_hand}",
            reserved=before.reserved,
            on_hand=before.on_hand,
        )
    new_threshold = before.low_stock_threshold if threshold is _UNCHANGED else threshold
    assert new_threshold is None or isinstance(new_threshold, int)
    delta = on_hand - before.on_hand
    if delta == 0 and new_threshold == before.low_stock_threshold:
        return []
    book.move(sku, on_hand=delta, received=delta, now=now)
    book.update_level(sku, low_stock_threshold=new_threshold)
    book.adjustments.append(
        Adjustment(
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
    )
    after = book.stock[sku]
    events: list[Event] = []
    if delta:
        events.append(_level_changed(after, delta, reason, now))
    low = _became_low(policy, before, after)
    if low is not None:
        events.append(low)
    return events


def adjust_level(
    book: StockBook,
    *,
    sku: str,
    delta: int,
    reason: str,
    actor_id: str,
    policy: StockPolicy,
    now: datetime,
) -> list[Event]:
    """Add `delta` units on hand (a delivery, breakage), counted from the locked row, so a
    change that landed since the admin looked is kept; the change goes to the audit trail."""
    current = book.stock[sku].on_hand
    on_hand = current + delta
    if on_hand > MAX_ON_HAND:
        raise AboveMaximumError(
            f"{sku} has {current} units on hand; adding {delta} would exceed {MAX_ON_HAND}",
            maximum=MAX_ON_HAND,
            on_hand=current,
        )
    return set_level(
        book,
        sku=sku,
        on_hand=on_hand,
        reason=reason,
        actor_id=actor_id,
        policy=policy,
        now=now,
    )


# --- transactions of the HTTP routes and the sweeper ---------------------------------------


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
    expected_on_hand: int | None = None,
) -> tuple[StockLevel, list[Event]]:
    # A refused set (stale expectation, below reserved) raises: the request's transaction rolls
    # back, the row this created for a new sku included.
    await repository.ensure_stock_rows(session, [sku])
    book = await repository.load_book(session, skus=[sku])
    events = set_level(
        book,
        sku=sku,
        on_hand=on_hand,
        reason=reason,
        actor_id=actor_id,
        policy=policy,
        now=now,
        threshold=threshold,
        expected_on_hand=expected_on_hand,
    )
    await repository.save_book(session, book)
    return book.stock[sku], events


async def adjust_stock(
    session: AsyncSession,
    *,
    sku: str,
    delta: int,
    reason: str,
    actor_id: str,
    policy: StockPolicy,
    now: datetime,
) -> tuple[StockLevel, list[Event]]:
    # Unlike a set, an adjustment never creates the row: a delta needs a level to count from,
    # and a mistyped sku should be a 404, not a new stock row.
    book = await repository.load_book(session, skus=[sku])
    if book.level(sku) is None:
        raise StockNotFoundError(f"no stock record for sku {sku!r}")
    events = adjust_level(
        book, sku=sku, delta=delta, reason=reason, actor_id=actor_id, policy=policy, now=now
    )
    await repository.save_book(session, book)
    return book.stock[sku], events


async def holds_past_expiry(session: AsyncSession, *, now: datetime) -> bool:
    """Whether any hold's expiry has passed by the clock (the sweeper's cheap first question)."""
    return bool(await repository.expired_held_reservations(session, before=now, limit=1))


async def release_expired(
    session: AsyncSession, *, now: datetime, expired_before: datetime, limit: int
) -> list[tuple[ReservationState, StockReleased]]:
    """Release holds whose expiry is before `expired_before`; orders being worked on right now
    are left for later.

    `expired_before` must be a time up to which every saga event (OrderConfirmed above all) is
    applied, not the wall clock: after an outage or a backlog, the confirmation of an order
    confirmed well inside its hold may still be unread, and releasing its hold first would
    cancel a paid order, or put a shipped unit back on sale."""
    candidates = await repository.expired_held_reservations(
        session, before=expired_before, limit=limit
    )
    locked = [
        order_id
        for order_id in sorted(candidates, key=repository.order_lock_key)
        if await repository.try_lock_order(session, order_id)
    ]
    book = await repository.load_book(session, order_ids=locked)  # re-taking held locks: no wait
    released = expire(book, now=now, expired_before=expired_before)
    await repository.save_book(session, book)
    return released


async def get_stock(session: AsyncSession, *, sku: str) -> StockLevel:
    stock = await repository.get_stock(session, sku)
    if stock is None:
        raise StockNotFoundError(f"no stock record for sku {sku!r}")
    return stock


async def list_stock(session: AsyncSession, *, after: str | None, limit: int) -> list[StockLevel]:
    return await repository.list_stock(session, after=after, limit=limit)


async def get_reservation(session: AsyncSession, *, order_id: str) -> ReservationState:
    if not is_uuid7(order_id):
        raise ReservationNotFoundError(f"no reservation for order {order_id!r}")
    row = await repository.get_reservation(session, order_id)
    if row is None:
        raise ReservationNotFoundError(f"no reservation for order {order_id}")
    return row


async def list_adjustments(
    session: AsyncSession, *, sku: str, before: str | None, limit: int
) -> list[StockAdjustment]:
    return await repository.list_adjustments(session, sku=sku, before=before, limit=limit)


def _released(row: ReservationState, reason: ReleaseReason) -> StockReleased:
    return StockReleased(
        order_id=row.order_id, reservation_id=row.id, lines=_stock_lines(row.lines), reason=reason
    )


def _level_changed(after: StockLevel, delta: int, reason: str, now: datetime) -> StockLevelChanged:
    return StockLevelChanged(
        sku=after.sku,
        on_hand=after.on_hand,
        reserved=after.reserved,
        available=after.available,
        delta=delta,
        reason=reason,
        changed_at=now,
    )
