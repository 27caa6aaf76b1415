from __future__ import annotations

from datetime import datetime
from typing import Any

from shopkit.db import service_metadata
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
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    metadata = service_metadata()


messaging = messaging_tables(Base.metadata)


class Recipient(Base):
    """Notifications' own projection of a user's contact details and channel preferences."""

    __tablename__ = "recipients"

    user_id: Mapped[str] = mapped_column(UUID(as_uuid=False), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(20))
    language: Mapped[str | None] = mapped_column(String(8))
    channels: Mapped[list[str] | None] = mapped_column(ARRAY(String(10)))
    """None until the user states preferences: the default (email only) applies."""
    preferences_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """`changed_at` of the preferences applied; older UserPreferencesChanged are ignored."""
    profile_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """`updated_at` of the profile applied (the name); older UserProfileUpdated are ignored."""
    phone_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """Time of the event the phone was taken from. Profile updates and preference changes both
    carry the phone the profile had at their time, on the users service's one clock: whichever
    is newest decides, in whatever order they arrive."""
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OrderOwner(Base):
    """Which user an order belongs to, for events that carry only the order id (refunds)."""

    __tablename__ = "order_owners"

    order_id: Mapped[str] = mapped_column(UUID(as_uuid=False), primary_key=True)
    user_id: Mapped[str] = mapped_column(UUID(as_uuid=False), index=True)


class Delivery(Base):
    """One message for one (source event, channel): the unique key is the exactly-once claim."""

    __tablename__ = "deliveries"

    id: Mapped[str] = mapped_column(UUID(as_uuid=False), primary_key=True)
    user_id: Mapped[str | None] = mapped_column(UUID(as_uuid=False), index=True)
    order_id: Mapped[str | None] = mapped_column(UUID(as_uuid=False))
    source_event_id: Mapped[str] = mapped_column(UUID(as_uuid=False))
    source_type: Mapped[str] = mapped_column(String(200))
    template: Mapped[str] = mapped_column(String(60))
    channel: Mapped[str] = mapped_column(String(10))
    address: Mapped[str | None] = mapped_column(String(320))
    """Fixed by the event (welcome, reset) or resolved from the projection at send time."""
    language: Mapped[str | None] = mapped_column(String(8))
    context: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    first_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When the provider was first tried (again, after an admin's resend): refusals for now are
    retried until `retry_window_seconds` after it. None until then."""
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    provider_message_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("source_event_id", "channel", name="uq_deliveries_event_channel"),
        Index("ix_deliveries_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
        Index("ix_deliveries_sending", "lease_until", postgresql_where=text("status = 'sending'")),
    )


class DeliveryAttempt(Base):
    """Every send attempt and how it ended (the retry record)."""

    __tablename__ = "delivery_attempts"

    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), index=True
    )
    attempt: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(20))
    error: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
