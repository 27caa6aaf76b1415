from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from shopkit.params import NO_CONTROL, JsonInteger, Uuid7


class NextActionPublic(BaseModel):
    type: str
    redirect_url: str | None = None
    client_secret: str | None = None


class RiskPublic(BaseModel):
    """Admin only: how the attempt was scored."""

    score: int
    level: str
    reasons: list[str]
    review_status: str
    reviewed_by: str | None = None
    reviewed_at: datetime | None = None
    review_note: str | None = None


class AttemptPublic(BaseModel):
    payment_id: str
    number: int
    status: str
    amount: int
    currency: str
    amount_captured: int
    amount_refunded: int
    provider_payment_id: str | None
    card_brand: str | None
    card_last4: str | None
    next_action: NextActionPublic | None
    failure_reason: str | None
    decline_code: str | None
    failure_message: str | None
    flagged_for_review: bool
    authorized_at: datetime | None
    captured_at: datetime | None
    voided_at: datetime | None
    failed_at: datetime | None
    created_at: datetime
    risk: RiskPublic | None = None


class RefundPublic(BaseModel):
    refund_id: str
    payment_id: str
    amount: int
    currency: str
    reason: str
    status: str
    full: bool
    provider_refund_id: str | None
    requested_by: str
    failure_message: str | None
    created_at: datetime
    completed_at: datetime | None


class OrderPaymentsPublic(BaseModel):
    order_id: str
    user_id: str | None
    status: str
    """The latest attempt's status, or `awaiting_order` before any attempt exists."""
    amount: int | None
    currency: str | None
    amount_authorized: int
    amount_captured: int
    amount_refunded: int
    attempts: list[AttemptPublic]
    refunds: list[RefundPublic]


class PaymentsExport(BaseModel):
    """Everything payments holds about the caller (LGPD/GDPR access request): the payments of
    their orders. Cards appear as brand and last four digits only (nothing more is stored)."""

    user_id: str
    orders: list[OrderPaymentsPublic]
    """Oldest first; `next_action` is left out (a 3-D Secure client secret is not data to keep)."""


class RefundCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Annotated[int, Field(gt=0, le=10_000_000_000), JsonInteger] = Field(
        description="Minor units; at most what is left captured (409 above it)"
    )
    reason: Annotated[str, StringConstraints(min_length=3, max_length=500, pattern=NO_CONTROL)]
    payment_id: Uuid7 | None = Field(default=None, description="Defaults to the captured attempt")


class ReviewPublic(BaseModel):
    payment_id: str
    order_id: str
    user_id: str
    status: str
    amount: int
    currency: str
    risk_score: int
    risk_level: str
    reasons: list[str]
    review_status: str
    card_country: str | None
    reviewed_by: str | None
    reviewed_at: datetime | None
    review_note: str | None
    created_at: datetime


class ReviewList(BaseModel):
    items: list[ReviewPublic]
    next_cursor: str | None


class ReviewResolve(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    note: Annotated[str, StringConstraints(max_length=2000, pattern=NO_CONTROL)] | None = None


class WebhookReceipt(BaseModel):
    received: bool = True
    event_id: str
    duplicate: bool
