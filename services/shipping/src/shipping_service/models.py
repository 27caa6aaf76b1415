from __future__ import annotations

from datetime import datetime
from typing import Any

from shopkit.db import service_metadata
from shopkit.erasure import ErasedUserColumns
from shopkit.messaging import messaging_tables
from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    metadata = service_metadata()


messaging = messaging_tables(Base.metadata)


class CatalogProduct(Base):
    """Shipping's projection of `catalog.events`: what a sku weighs (latest document version)."""

    __tablename__ = "catalog_products"

    product_id: Mapped[str] = mapped_column(UUID(as_uuid=False), primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), index=True)
    weight_grams: Mapped[int] = mapped_column(Integer)
    is_active: Mapped[bool]
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class ErasedUser(ErasedUserColumns, Base):
    """An account deleted (UserDeletionRequested): a shipment of its orders created later keeps
    no address (`repository.ERASURES`)."""


class OrderDecision(Base):
    """What orders decided about an order whose shipment did not exist yet: its OrderConfirmed
    was parked (dead-lettered) and comes back only when an operator replays it, after the
    cancellation or the release that followed it. The shipment created then obeys this row."""

    __tablename__ = "order_decisions"

    order_id: Mapped[str] = mapped_column(UUID(as_uuid=False), primary_key=True)
    user_id: Mapped[str] = mapped_column(UUID(as_uuid=False))
    cancel_reason: Mapped[str | None] = mapped_column(String(40))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """The first cancellation (or request to cancel): the shipment is created cancelled."""
    shipment_id: Mapped[str | None] = mapped_column(UUID(as_uuid=False))
    """Set once ShipmentCancelled answered the cancellation: the id it named, which the
    shipment created later takes (and then announces nothing more)."""
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """The payment review approved the order: its shipment is not created on hold."""
    recorded_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class Shipment(Base):
    __tablename__ = "shipments"

    id: Mapped[str] = mapped_column(UUID(as_uuid=False), primary_key=True)
    order_id: Mapped[str] = mapped_column(UUID(as_uuid=False), unique=True)
    """One shipment per order: a redelivered OrderConfirmed finds it instead of adding one."""
    user_id: Mapped[str] = mapped_column(UUID(as_uuid=False), index=True)
    carrier: Mapped[str] = mapped_column(String(40))
    service: Mapped[str] = mapped_column(String(40))
    tracking_number: Mapped[str] = mapped_column(String(40), unique=True)
    status: Mapped[str] = mapped_column(String(30))
    progress: Mapped[int] = mapped_column(Integer)
    """Rank of the furthest forward status reached; carrier updates at or below it are stale."""
    quote_id: Mapped[str] = mapped_column(Text)
    price: Mapped[int] = mapped_column(Integer)
    estimated_days: Mapped[int] = mapped_column(Integer)
    weight_grams: Mapped[int] = mapped_column(Integer)
    address: Mapped[dict[str, Any]] = mapped_column(JSONB)
    """The delivery address as confirmed on the order (personal data: anonymised on deletion)."""
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    skus: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_event_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When the latest applied carrier update happened (carrier clock)."""
    correlation_id: Mapped[str] = mapped_column(String(64))
    """The checkout's correlation id, continued by the events carrier webhooks cause."""
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    anonymised_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index(
            "ix_shipments_open",
            "updated_at",
            postgresql_where=text("status NOT IN ('delivered', 'cancelled')"),
        ),
    )


class TrackingEvent(Base):
    __tablename__ = "tracking_events"

    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    shipment_id: Mapped[str] = mapped_column(
        ForeignKey("shipments.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(30))
    description: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(String(120))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recorded_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    carrier_event_id: Mapped[str | None] = mapped_column(String(120))
    applied: Mapped[bool]
    """False when the update arrived after a later status (kept for the record, not applied)."""


class CarrierWebhook(Base):
    """Inbox of carrier webhooks: one row per (carrier, event id), written with the effect."""

    __tablename__ = "carrier_webhooks"

    carrier: Mapped[str] = mapped_column(String(40), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    tracking_number: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(30))
    outcome: Mapped[str] = mapped_column(String(30))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
