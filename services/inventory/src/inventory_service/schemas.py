from __future__ import annotations

from datetime import datetime
from typing import Annotated

from contracts.types import Quantity
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from shopkit.params import SINGLE_LINE, JsonInteger, Stripped

from inventory_service.book import ReservationState, StockLevel
from inventory_service.service import MAX_ON_HAND, StockPolicy

Reason = Annotated[str, StringConstraints(max_length=200, pattern=SINGLE_LINE), Stripped]
Units = Annotated[int, Field(ge=0, le=MAX_ON_HAND), JsonInteger]

EXPECTED_ON_HAND_DOC = (
    "The `on_hand` the new value was worked out from (as last read). When the stored `on_hand` "
    "is no longer that (an order was committed, stock restocked or set by someone else in "
    "between) nothing is changed: 409 `stock-changed`, with the current `on_hand` in the "
    "problem. Left out, `on_hand` is set whatever it is now."
)


class StockSet(BaseModel):
    """Set the units on hand: those counted, minus the parcels of confirmed orders still waiting
    for dispatch (their units already left `on_hand`); `low_stock_threshold` (optional)
    overrides the default."""

    model_config = ConfigDict(extra="forbid")

    on_hand: Units
    reason: Reason
    low_stock_threshold: Units | None = None
    """`null` goes back to the default threshold."""
    expected_on_hand: Annotated[Units | None, Field(description=EXPECTED_ON_HAND_DOC)] = None


class StockAdjust(BaseModel):
    """Add units on hand (negative: remove them), relative to the level when it is applied."""

    model_config = ConfigDict(extra="forbid")

    delta: Annotated[
        int,
        Field(
            ge=-MAX_ON_HAND,
            le=MAX_ON_HAND,
            description="Units to add (a delivery) or, negative, to remove (breakage, loss); "
            "0 changes nothing.",
        ),
        JsonInteger,
    ]
    reason: Reason


class StockPublic(BaseModel):
    """A sku's availability as anyone may see it (storefronts): the API contract, nothing of
    the business behind it (units sold, thresholds)."""

    sku: str
    on_hand: int
    reserved: int
    available: int

    @classmethod
    def of(cls, stock: StockLevel) -> StockPublic:
        return cls(
            sku=stock.sku,
            on_hand=stock.on_hand,
            reserved=stock.reserved,
            available=stock.available,
        )


class StockAdmin(BaseModel):
    """A sku's full stock record, for admins."""

    sku: str
    product_id: str | None
    on_hand: int
    reserved: int
    available: int
    committed: int
    low_stock_threshold: int
    updated_at: datetime

    @classmethod
    def of(cls, stock: StockLevel, policy: StockPolicy) -> StockAdmin:
        return cls(
            sku=stock.sku,
            product_id=stock.product_id,
            on_hand=stock.on_hand,
            reserved=stock.reserved,
            available=stock.available,
            committed=stock.committed,
            low_stock_threshold=policy.threshold(stock),
            updated_at=stock.updated_at,
        )


class StockList(BaseModel):
    items: list[StockAdmin]
    next_cursor: str | None


class AdjustmentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

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


class AdjustmentList(BaseModel):
    items: list[AdjustmentPublic]
    next_cursor: str | None


class ReservationLinePublic(BaseModel):
    sku: str
    quantity: Quantity


class ReservationPublic(BaseModel):
    order_id: str
    reservation_id: str
    status: str
    reason: str | None
    expires_at: datetime | None
    lines: list[ReservationLinePublic]

    @classmethod
    def of(cls, row: ReservationState) -> ReservationPublic:
        return cls(
            order_id=row.order_id,
            reservation_id=row.id,
            status=row.status,
            reason=row.reason,
            expires_at=row.expires_at,
            lines=[ReservationLinePublic(sku=sku, quantity=q) for sku, q in row.lines],
        )
