from __future__ import annotations

from datetime import datetime
from typing import Annotated

from contracts.types import Quantity
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from shopkit.params import SINGLE_LINE, JsonInteger, Stripped

from inventory_service.book import ReservationState, StockLevel
from inventory_service.service import StockPolicy

Reason = Annotated[str, StringConstraints(max_length=200, pattern=SINGLE_LINE), Stripped]


class StockSet(BaseModel):
    """Set the counted units on hand; `low_stock_threshold` (optional) overrides the default."""

    model_config = ConfigDict(extra="forbid")

    on_hand: Annotated[int, Field(ge=0, le=10_000_000), JsonInteger]
    reason: Reason
    low_stock_threshold: Annotated[int, Field(ge=0, le=10_000_000), JsonInteger] | None = None
    """`null` goes back to the default threshold."""


class StockPublic(BaseModel):
    sku: str
    product_id: str | None
    on_hand: int
    reserved: int
    available: int
    committed: int
    low_stock_threshold: int
    updated_at: datetime

    @classmethod
    def of(cls, stock: StockLevel, policy: StockPolicy) -> StockPublic:
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
    items: list[StockPublic]
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
