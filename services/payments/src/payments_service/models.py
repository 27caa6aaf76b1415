"""The payments database: what each order must be paid, its attempts, refunds, provider calls
and the Stripe webhook inbox."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from shopkit.db import service_metadata
from shopkit.erasure import ErasedUserColumns
from shopkit.messaging import messaging_tables
from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    metadata = service_metadata()


messaging = messaging_tables(Base.metadata)


class AttemptStatus(StrEnum):
    PENDING = "pending"
    """Recorded with its idempotency key; the provider's answer is not known yet."""
    REQUIRES_ACTION = "requires_action"
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    VOIDED = "voided"
    FAILED = "failed"


class ReviewStatus(StrEnum):
    NONE = "none"
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class CallStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class RefundStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


def _enum(enum: type[StrEnum]) -> Enum:
    """Stored as its value in a VARCHAR, read back as the enum member."""
    return Enum(enum, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e])


def _now_column() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class ErasedUser(ErasedUserColumns, Base):
    """An account deleted (UserDeletionRequested): its personal data here was removed, and none
    may be stored again (an event of its in-flight orders arriving late)."""


class PaymentOrder(Base):
    """What payments knows about one order, assembled from OrderPlaced, StockReserved,
    OrderCancelled and ShipmentDispatched in whatever order they arrive."""

    __tablename__ = "payment_orders"

    order_id: Mapped[str] = mapped_column(UUID(as_uuid=False), primary_key=True)
    user_id: Mapped[str | None] = mapped_column(UUID(as_uuid=False), index=True)
    amount: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    payment_method_id: Mapped[str | None] = mapped_column(String(255))
    customer_ip: Mapped[str | None] = mapped_column(String(64))
    shipping_country: Mapped[str | None] = mapped_column(String(2))
    correlation_id: Mapped[str | None] = mapped_column(String(64))
    placed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reservation_id: Mapped[str | None] = mapped_column(UUID(as_uuid=False))
    reservation_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_reason: Mapped[str | None] = mapped_column(String(64))
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _now_column()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), onupdate=func.now()
    )

    @property
    def is_placed(self) -> bool:
        return self.placed_at is not None

    @property
    def is_cancelled(self) -> bool:
        return self.cancelled_at is not None


class PaymentAttempt(Base):
    """One PaymentIntent for one order (`payment_id` in the events)."""

    __tablename__ = "payment_attempts"
    __table_args__ = (
        UniqueConstraint("order_id", "number", name="uq_payment_attempts_order_number"),
        Index(
            "ix_payment_attempts_review",
            "id",
            postgresql_where=text("review_status = 'pending'"),
        ),
        Index("ix_payment_attempts_open", "status", "updated_at"),
    )

    id: Mapped[str] = mapped_column(UUID(as_uuid=False), primary_key=True)
    order_id: Mapped[str] = mapped_column(UUID(as_uuid=False), nullable=False, index=True)
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    user_id: Mapped[str] = mapped_column(UUID(as_uuid=False), nullable=False)
    reservation_id: Mapped[str | None] = mapped_column(UUID(as_uuid=False))
    status: Mapped[AttemptStatus] = mapped_column(_enum(AttemptStatus), nullable=False)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    amount_captured: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    amount_refunded: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    payment_method_id: Mapped[str] = mapped_column(String(255), nullable=False)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    provider_payment_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    provider_status: Mapped[str | None] = mapped_column(String(64))
    provider_event_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """Creation time of the newest provider webhook applied; older ones are ignored."""
    next_action: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    card_fingerprint: Mapped[str | None] = mapped_column(String(64))
    card_country: Mapped[str | None] = mapped_column(String(2))
    card_brand: Mapped[str | None] = mapped_column(String(32))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    risk_score: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    risk_level: Mapped[str] = mapped_column(String(16), nullable=False, default="low")
    risk_reasons: Mapped[list[str]] = mapped_column(JSONB, nullable=False, default=list)
    review_status: Mapped[ReviewStatus] = mapped_column(
        _enum(ReviewStatus), nullable=False, default=ReviewStatus.NONE
    )
    reviewed_by: Mapped[str | None] = mapped_column(UUID(as_uuid=False))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    review_note: Mapped[str | None] = mapped_column(Text)
    failure_reason: Mapped[str | None] = mapped_column(String(32))
    decline_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(Text)
    authorized_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    captured_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    voided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _now_column()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), onupdate=func.now()
    )

    @property
    def flagged_for_review(self) -> bool:
        """The risk rules sent it to an admin's review (decided or not): what the payment view
        shows, next to the review's status."""
        return self.review_status != ReviewStatus.NONE

    @property
    def awaiting_review(self) -> bool:
        """Held for an admin's decision, which is what `PaymentAuthorized.flagged_for_review`
        announces. Only a review still open holds anything: once approved the payment goes
        ahead like any other (an approval given before the authorization, e.g. during 3-D
        Secure, is never sent again, so announcing it as flagged would hold the order forever),
        and a rejected one never reaches PaymentAuthorized."""
        return self.review_status == ReviewStatus.PENDING

    @property
    def refundable(self) -> int:
        return self.amount_captured - self.amount_refunded


class Refund(Base):
    __tablename__ = "refunds"
    __table_args__ = (
        UniqueConstraint("order_id", "request_key", name="uq_refunds_order_request_key"),
    )

    id: Mapped[str] = mapped_column(UUID(as_uuid=False), primary_key=True)
    order_id: Mapped[str] = mapped_column(UUID(as_uuid=False), nullable=False, index=True)
    payment_id: Mapped[str] = mapped_column(UUID(as_uuid=False), nullable=False, index=True)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[RefundStatus] = mapped_column(_enum(RefundStatus), nullable=False)
    full: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    request_key: Mapped[str | None] = mapped_column(String(255))
    """What made the refund unique: an admin's Idempotency-Key, or the compensation name."""
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    provider_refund_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    requested_by: Mapped[str] = mapped_column(String(64), nullable=False)
    failure_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _now_column()
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ProviderCall(Base):
    """A write to the provider, recorded (and committed) before it is sent, so a retry after a
    timeout or a crash sends the same request under the same idempotency key."""

    __tablename__ = "provider_calls"

    idempotency_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    operation: Mapped[str] = mapped_column(String(32), nullable=False)
    order_id: Mapped[str] = mapped_column(UUID(as_uuid=False), nullable=False, index=True)
    payment_id: Mapped[str] = mapped_column(UUID(as_uuid=False), nullable=False)
    refund_id: Mapped[str | None] = mapped_column(UUID(as_uuid=False))
    request: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    status: Mapped[CallStatus] = mapped_column(_enum(CallStatus), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    response_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = _now_column()
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class StripeEvent(Base):
    """The webhook inbox: one row per Stripe event id, stored before the 2xx answer."""

    __tablename__ = "stripe_events"
    __table_args__ = (
        Index(
            "ix_stripe_events_pending",
            "provider_created_at",
            "seq",
            postgresql_where=text("processed_at IS NULL"),
        ),
    )

    event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), nullable=False)
    type: Mapped[str] = mapped_column(String(100), nullable=False)
    provider_created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), index=True)
    payment_id: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    received_at: Mapped[datetime] = _now_column()
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
