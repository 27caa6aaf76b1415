"""Stock per sku, its audit trail, and one reservation per order.

Counters keep the platform invariant in the database itself: `received = on_hand + committed`
and `reserved <= on_hand`, where on hand = reserved + available. So reserved + committed +
available = total received, and available can never go negative, whatever the code does.
"""

from __future__ import annotations

from datetime import datetime

from shopkit.db import service_metadata
from shopkit.messaging import messaging_tables
from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    metadata = service_metadata()


messaging = messaging_tables(Base.metadata)


class StockItem(Base):
    __tablename__ = "stock_items"
    __table_args__ = (
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        CheckConstraint("committed >= 0", name="committed_not_negative"),
        CheckConstraint("on_hand >= reserved", name="available_not_negative"),
        CheckConstraint("received = on_hand + committed", name="received_balances"),
    )

    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    product_id: Mapped[str | None] = mapped_column(UUID(as_uuid=False))
    """Set from `ProductCreated`; stock may be set before the catalog announced the product."""
    on_hand: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    """Units in the warehouse: reserved + available."""
    reserved: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    committed: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    """Units that left stock for confirmed orders."""
    received: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    """Net units ever put into stock (admin adjustments): on_hand + committed."""
    low_stock_threshold: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class StockAdjustment(Base):
    """The audit trail of manual stock changes: who set what, from what, and why."""

    __tablename__ = "stock_adjustments"
    __table_args__ = (Index("ix_stock_adjustments_sku_created_at", "sku", "created_at"),)

    id: Mapped[str] = mapped_column(UUID(as_uuid=False), primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), ForeignKey("stock_items.sku"))
    previous_on_hand: Mapped[int] = mapped_column(Integer)
    new_on_hand: Mapped[int] = mapped_column(Integer)
    delta: Mapped[int] = mapped_column(Integer)
    previous_threshold: Mapped[int | None] = mapped_column(Integer)
    new_threshold: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    actor_id: Mapped[str] = mapped_column(UUID(as_uuid=False))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Reservation(Base):
    """One per order. `held` -> `committed` | `released`; `failed` when nothing could be held.

    A release that arrives before its order is recorded as a `released` row without lines, so
    the late `OrderPlaced` finds the order already settled and holds nothing.
    """

    __tablename__ = "reservations"
    __table_args__ = (
        CheckConstraint(
            "status IN ('held', 'committed', 'released', 'failed')", name="status_known"
        ),
        Index(
            "ix_reservations_held_expiry", "expires_at", postgresql_where=text("status = 'held'")
        ),
    )

    order_id: Mapped[str] = mapped_column(UUID(as_uuid=False), primary_key=True)
    id: Mapped[str] = mapped_column(UUID(as_uuid=False), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(40))
    """Why it was released or failed."""
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    correlation_id: Mapped[str | None] = mapped_column(String(64))
    """The checkout's correlation id, carried by events the sweeper emits later."""
    placed_event_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ReservationLine(Base):
    __tablename__ = "reservation_lines"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    order_id: Mapped[str] = mapped_column(
        UUID(as_uuid=False), ForeignKey("reservations.order_id"), primary_key=True
    )
    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer)
