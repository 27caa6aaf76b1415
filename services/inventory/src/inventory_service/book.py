"""The stock book: the locked stock rows and reservations one transaction works on, in memory.

A transaction loads its book once (taking every lock in the global order), the stock rules
change it in memory, and the repository writes back only what changed, in a few bulk
statements. A batch of 500 orders costs a dozen round trips instead of thousands.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime


class BalanceError(RuntimeError):
    """A change would break reserved + committed + available = received, or go negative."""


@dataclass(frozen=True, slots=True)
class StockLevel:
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


@dataclass(frozen=True, slots=True)
class ReservationState:
    order_id: str
    id: str
    status: str
    reason: str | None
    expires_at: datetime | None
    correlation_id: str | None
    placed_event_id: str | None
    lines: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class Adjustment:
    id: str
    sku: str
    previous_on_hand: int
    new_on_hand: int
    delta: int
    previous_threshold: int | None
    new_threshold: int | None
    reason: str
    actor_id: str
    created_at: datetime


@dataclass
class StockBook:
    stock: dict[str, StockLevel]
    reservations: dict[str, ReservationState]
    changed_stock: set[str] = field(default_factory=set)
    new_reservations: list[str] = field(default_factory=list)
    changed_reservations: set[str] = field(default_factory=set)
    adjustments: list[Adjustment] = field(default_factory=list)

    def level(self, sku: str) -> StockLevel | None:
        return self.stock.get(sku)

    def move(
        self,
        sku: str,
        *,
        now: datetime,
        on_hand: int = 0,
        reserved: int = 0,
        committed: int = 0,
        received: int = 0,
    ) -> StockLevel:
        """Apply counter deltas to a loaded row; returns the row as it was before."""
        before = self.stock[sku]
        after = replace(
            before,
            on_hand=before.on_hand + on_hand,
            reserved=before.reserved + reserved,
            committed=before.committed + committed,
            received=before.received + received,
            updated_at=now,
        )
        if (
            after.reserved < 0
            or after.committed < 0
            or after.available < 0
            or after.received != after.on_hand + after.committed
        ):
            raise BalanceError(f"{sku}: {before} cannot become {after}")
        self.stock[sku] = after
        self.changed_stock.add(sku)
        return before

    def update_level(self, sku: str, **changes: object) -> None:
        self.stock[sku] = replace(self.stock[sku], **changes)  # type: ignore[arg-type]
        self.changed_stock.add(sku)

    def reservation(self, order_id: str) -> ReservationState | None:
        return self.reservations.get(order_id)

    def add_reservation(self, reservation: ReservationState) -> None:
        if reservation.order_id in self.reservations:
            raise ValueError(f"order {reservation.order_id} already has a reservation")
        self.reservations[reservation.order_id] = reservation
        self.new_reservations.append(reservation.order_id)

    def update_reservation(self, order_id: str, **changes: object) -> None:
        self.reservations[order_id] = replace(self.reservations[order_id], **changes)  # type: ignore[arg-type]
        if order_id not in self.new_reservations:
            self.changed_reservations.add(order_id)
