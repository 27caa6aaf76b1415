"""Tables of the orders database: the catalog projection, carts, coupons, orders, timeline and
erased accounts."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from shopkit.db import service_metadata
from shopkit.erasure import ErasedUserColumns
from shopkit.messaging import messaging_tables
from sqlalchemy import (
    BigInteger,
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
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

Uuid = UUID(as_uuid=False)
Timestamp = DateTime(timezone=True)


STATUS_NOTE_LENGTH: Final = 80
"""Characters of a status change's reason and of a cancellation's note: the API refuses a
longer cancellation note rather than cutting what the customer wrote."""


class Base(DeclarativeBase):
    metadata = service_metadata()


messaging = messaging_tables(Base.metadata)


class Product(Base):
    """What checkout may sell and at which price: a projection of `catalog.events`."""

    __tablename__ = "products"

    product_id: Mapped[str] = mapped_column(Uuid, primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(Text)
    price: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    is_active: Mapped[bool]
    version: Mapped[int] = mapped_column(Integer)
    """The catalog document version last applied: older events are ignored."""
    updated_at: Mapped[datetime] = mapped_column(Timestamp)


class Cart(Base):
    """A shopping cart, owned by a user or by the holder of an anonymous cart token."""

    __tablename__ = "carts"

    id: Mapped[str] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[str | None] = mapped_column(Uuid, unique=True)
    anonymous_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    """SHA-256 of the anonymous cart token: the token itself is a bearer secret."""
    coupon_code: Mapped[str | None] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(BigInteger, server_default=text("1"))
    """Bumped by every change; the Redis copy is only ever replaced by a newer version."""
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(Timestamp, index=True)

    __table_args__ = (
        CheckConstraint("(user_id IS NULL) <> (anonymous_key IS NULL)", name="one_owner"),
    )


class CartItem(Base):
    __tablename__ = "cart_items"

    cart_id: Mapped[str] = mapped_column(
        Uuid, ForeignKey("carts.id", ondelete="CASCADE"), primary_key=True
    )
    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer)
    added_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())

    __table_args__ = (CheckConstraint("quantity > 0", name="positive_quantity"),)


class Coupon(Base):
    __tablename__ = "coupons"

    id: Mapped[str] = mapped_column(Uuid, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    """`percentage` (of the subtotal) or `fixed` (an amount off the subtotal)."""
    percent_off: Mapped[int | None] = mapped_column(Integer)
    amount_off: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    min_subtotal: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    valid_from: Mapped[datetime | None] = mapped_column(Timestamp)
    valid_until: Mapped[datetime | None] = mapped_column(Timestamp)
    max_uses: Mapped[int | None] = mapped_column(Integer)
    max_uses_per_user: Mapped[int | None] = mapped_column(Integer)
    uses: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    """Redemptions held by orders that were not cancelled, plus those of cancelled orders whose
    use is not given back yet (`CouponRedemption.return_due_at`)."""
    active: Mapped[bool] = mapped_column(server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())

    __table_args__ = (
        CheckConstraint("kind IN ('percentage', 'fixed')", name="known_kind"),
        CheckConstraint(
            "(kind = 'percentage' AND percent_off BETWEEN 1 AND 100 AND amount_off IS NULL)"
            " OR (kind = 'fixed' AND amount_off > 0 AND percent_off IS NULL)",
            name="value_matches_kind",
        ),
        # The database itself refuses an over-redemption, whatever the code above it does.
        CheckConstraint(
            "uses >= 0 AND (max_uses IS NULL OR uses <= max_uses)", name="uses_in_limit"
        ),
    )


class CouponRedemption(Base):
    """One order's use of a coupon; released (not deleted) when the order is cancelled."""

    __tablename__ = "coupon_redemptions"

    order_id: Mapped[str] = mapped_column(Uuid, primary_key=True)
    coupon_id: Mapped[str] = mapped_column(Uuid, ForeignKey("coupons.id"))
    user_id: Mapped[str] = mapped_column(Uuid)
    discount: Mapped[int] = mapped_column(BigInteger)
    redeemed_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())
    released_at: Mapped[datetime | None] = mapped_column(Timestamp)
    """When the order was cancelled: from then on the redemption no longer counts for the
    user's limit."""
    return_due_at: Mapped[datetime | None] = mapped_column(Timestamp)
    """Set with `released_at` while the use still counts in `coupons.uses`, cleared in the
    statement that gives it back (`repository.coupons.give_back_uses`). The cancellation's
    own transaction never touches the coupon row, which checkouts of a popular coupon queue
    on. A positive mark rather than a `returned_at` left empty: a cancellation by a release
    from before this column (which gave the use back at once) leaves it empty, and must not
    be given back twice."""

    __table_args__ = (
        Index(
            "ix_coupon_redemptions_held",
            "coupon_id",
            "user_id",
            postgresql_where=text("released_at IS NULL"),
        ),
        Index(
            "ix_coupon_redemptions_return_due",
            "coupon_id",
            postgresql_where=text("return_due_at IS NOT NULL"),
        ),
    )


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[str] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[str] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(20))
    currency: Mapped[str] = mapped_column(String(3))
    subtotal: Mapped[int] = mapped_column(BigInteger)
    discount: Mapped[int] = mapped_column(BigInteger)
    shipping: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[int] = mapped_column(BigInteger)
    coupon_code: Mapped[str | None] = mapped_column(String(32))
    shipping_address: Mapped[dict[str, Any]] = mapped_column(JSONB)
    """Snapshot at checkout: later profile edits never change where this order goes."""
    shipping_choice: Mapped[dict[str, Any]] = mapped_column(JSONB)
    payment_method_id: Mapped[str] = mapped_column(String(255))
    customer_ip: Mapped[str | None] = mapped_column(String(64))
    payment_id: Mapped[str | None] = mapped_column(Uuid)
    payment_status: Mapped[str] = mapped_column(String(24), server_default=text("'pending'"))
    payment_next_action: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    authorized_amount: Mapped[int | None] = mapped_column(BigInteger)
    cancel_reason: Mapped[str | None] = mapped_column(String(40))
    cancellation_status: Mapped[str | None] = mapped_column(String(12))
    """A cancellation asked of a CONFIRMED order: `requested` until shipping answers, then
    `accepted` (the order is CANCELLED) or `refused` (its parcel had left: SHIPPED)."""
    cancellation_reason: Mapped[str | None] = mapped_column(String(40))
    cancellation_note: Mapped[str | None] = mapped_column(String(STATUS_NOTE_LENGTH))
    cancellation_actor: Mapped[str | None] = mapped_column(Uuid)
    cancellation_requested_at: Mapped[datetime | None] = mapped_column(Timestamp)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)
    status_changed_at: Mapped[datetime] = mapped_column(Timestamp)
    anonymised_at: Mapped[datetime | None] = mapped_column(Timestamp)
    """When the customer's account was deleted and the personal fields were replaced."""

    __table_args__ = (
        Index("ix_orders_user_id_id", "user_id", "id"),
        Index("ix_orders_status_changed", "status", "status_changed_at"),
        Index(
            "ix_orders_cancellation_requested",
            "cancellation_requested_at",
            postgresql_where=text("cancellation_status = 'requested'"),
        ),
        CheckConstraint(
            "total = subtotal - discount + shipping AND total >= 0", name="total_adds_up"
        ),
    )


class OrderLine(Base):
    __tablename__ = "order_lines"

    order_id: Mapped[str] = mapped_column(
        Uuid, ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True
    )
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku: Mapped[str] = mapped_column(String(64))
    product_id: Mapped[str] = mapped_column(Uuid)
    name: Mapped[str] = mapped_column(Text)
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[int] = mapped_column(BigInteger)
    line_total: Mapped[int] = mapped_column(BigInteger)


class OrderStatusChange(Base):
    """The order's full status history: from, to, why, which event caused it, when."""

    __tablename__ = "order_status_history"

    id: Mapped[str] = mapped_column(Uuid, primary_key=True)
    order_id: Mapped[str] = mapped_column(
        Uuid, ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(STATUS_NOTE_LENGTH))
    event_id: Mapped[str | None] = mapped_column(Uuid)
    event_type: Mapped[str | None] = mapped_column(String(200))
    actor: Mapped[str | None] = mapped_column(Uuid)
    """The user who asked for it (customer or admin cancel); null for events."""
    at: Mapped[datetime] = mapped_column(Timestamp)


class IgnoredEvent(Base):
    """An event that no longer fitted the order's state: recorded, never applied backwards."""

    __tablename__ = "order_ignored_events"

    order_id: Mapped[str] = mapped_column(Uuid, primary_key=True)
    event_id: Mapped[str] = mapped_column(Uuid, primary_key=True)
    event_type: Mapped[str] = mapped_column(String(200))
    order_status: Mapped[str | None] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())


class IdempotencyKey(Base):
    """A checkout's `Idempotency-Key`, claimed in the same transaction as the order it made."""

    __tablename__ = "idempotency_keys"

    user_id: Mapped[str] = mapped_column(Uuid, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[str | None] = mapped_column(Uuid)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now(), index=True)


class TimelineEvent(Base):
    """Every event on every topic, indexed by correlation id and subject (the saga timeline)."""

    __tablename__ = "timeline_events"

    event_id: Mapped[str] = mapped_column(Uuid, primary_key=True)
    correlation_id: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str] = mapped_column(String(200), index=True)
    causation_id: Mapped[str | None] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(100))
    topic: Mapped[str] = mapped_column(String(200))
    time: Mapped[datetime] = mapped_column(Timestamp)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    recorded_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now(), index=True)


class ErasedUser(ErasedUserColumns, Base):
    """An account deleted (UserDeletionRequested): the timeline records its events arriving
    later without their personal fields (`repository.erasure.ERASURES`)."""
