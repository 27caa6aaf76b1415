"""Events of the inventory service (topic `inventory.events`).

Saga events are keyed by order id so they stay in order with the order's other events;
stock-level events are keyed by sku.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from contracts import topics
from contracts.base import Event, Model
from contracts.types import Id, Quantity, Sku, UtcDatetime

ReleaseReason = Literal["payment_failed", "order_cancelled", "expired"]


class StockLine(Model):
    sku: Sku
    quantity: Quantity


class UnavailableLine(Model):
    sku: Sku
    requested: Quantity
    available: int = Field(ge=0)


class StockReserved(Event):
    """Every line of the order is held until `expires_at` (all or nothing)."""

    ce_type: ClassVar[str] = "shop.inventory.stock_reserved.v1"
    topic: ClassVar[str] = topics.INVENTORY
    key_field: ClassVar[str] = "order_id"

    order_id: Id
    reservation_id: Id
    lines: list[StockLine] = Field(min_length=1)
    expires_at: UtcDatetime


class StockReservationFailed(Event):
    """Nothing was reserved: at least one line could not be covered."""

    ce_type: ClassVar[str] = "shop.inventory.stock_reservation_failed.v1"
    topic: ClassVar[str] = topics.INVENTORY
    key_field: ClassVar[str] = "order_id"

    order_id: Id
    unavailable: list[UnavailableLine]
    reason: Literal["out_of_stock", "unknown_sku"] = "out_of_stock"


class StockReservationExtended(Event):
    """The hold was extended while the customer completes a payment action (3DS)."""

    ce_type: ClassVar[str] = "shop.inventory.stock_reservation_extended.v1"
    topic: ClassVar[str] = topics.INVENTORY
    key_field: ClassVar[str] = "order_id"

    order_id: Id
    reservation_id: Id
    expires_at: UtcDatetime


class StockReleased(Event):
    """Compensation: the reserved units are available again."""

    ce_type: ClassVar[str] = "shop.inventory.stock_released.v1"
    topic: ClassVar[str] = topics.INVENTORY
    key_field: ClassVar[str] = "order_id"

    order_id: Id
    reservation_id: Id
    lines: list[StockLine]
    reason: ReleaseReason


class StockCommitted(Event):
    """The reserved units left stock for good: the order is confirmed."""

    ce_type: ClassVar[str] = "shop.inventory.stock_committed.v1"
    topic: ClassVar[str] = topics.INVENTORY
    key_field: ClassVar[str] = "order_id"

    order_id: Id
    reservation_id: Id
    lines: list[StockLine]


class StockLevelChanged(Event):
    ce_type: ClassVar[str] = "shop.inventory.stock_level_changed.v1"
    topic: ClassVar[str] = topics.INVENTORY
    key_field: ClassVar[str] = "sku"

    sku: Sku
    on_hand: int = Field(ge=0)
    reserved: int = Field(ge=0)
    available: int = Field(ge=0)
    delta: int
    reason: str
    changed_at: UtcDatetime


class StockLow(Event):
    ce_type: ClassVar[str] = "shop.inventory.stock_low.v1"
    topic: ClassVar[str] = topics.INVENTORY
    key_field: ClassVar[str] = "sku"

    sku: Sku
    available: int = Field(ge=0)
    threshold: int = Field(ge=0)
