"""Events of the payments service (topic `payments.events`, keyed by order id).

`payment_id` names one attempt for one order; compensations always carry the attempt they act on.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from contracts import topics
from contracts.base import Event, Model
from contracts.types import Currency, Id, MinorUnits, ProviderId, UtcDatetime

FailureReason = Literal["declined", "risk", "error", "action_abandoned", "expired"]


class NextAction(Model):
    """What the client must do to finish the payment (3-D Secure)."""

    type: str
    redirect_url: str | None = None
    client_secret: str | None = None


class PaymentAuthorized(Event):
    ce_type: ClassVar[str] = "shop.payments.payment_authorized.v1"
    topic: ClassVar[str] = topics.PAYMENTS
    key_field: ClassVar[str] = "order_id"

    order_id: Id
    payment_id: Id
    provider_payment_id: ProviderId
    amount: MinorUnits
    currency: Currency
    flagged_for_review: bool = False
    authorized_at: UtcDatetime


class PaymentReviewResolved(Event):
    """An admin decided on a payment flagged for review. `approved`: the order's parcel may be
    handed to the carrier (orders releases it); `rejected`: the payment is voided or refunded
    (its own event follows) and the order cancelled."""

    ce_type: ClassVar[str] = "shop.payments.payment_review_resolved.v1"
    topic: ClassVar[str] = topics.PAYMENTS
    key_field: ClassVar[str] = "order_id"

    order_id: Id
    payment_id: Id
    decision: Literal["approved", "rejected"]
    resolved_at: UtcDatetime


class PaymentActionRequired(Event):
    ce_type: ClassVar[str] = "shop.payments.payment_action_required.v1"
    topic: ClassVar[str] = topics.PAYMENTS
    key_field: ClassVar[str] = "order_id"

    order_id: Id
    payment_id: Id
    provider_payment_id: ProviderId
    next_action: NextAction
    amount: MinorUnits
    currency: Currency


class PaymentFailed(Event):
    ce_type: ClassVar[str] = "shop.payments.payment_failed.v1"
    topic: ClassVar[str] = topics.PAYMENTS
    key_field: ClassVar[str] = "order_id"

    order_id: Id
    payment_id: Id
    provider_payment_id: ProviderId | None = None
    reason: FailureReason
    decline_code: str | None = None
    message: str | None = None
    failed_at: UtcDatetime


class PaymentCaptured(Event):
    ce_type: ClassVar[str] = "shop.payments.payment_captured.v1"
    topic: ClassVar[str] = topics.PAYMENTS
    key_field: ClassVar[str] = "order_id"

    order_id: Id
    payment_id: Id
    provider_payment_id: ProviderId
    amount: MinorUnits
    currency: Currency
    captured_at: UtcDatetime


class PaymentVoided(Event):
    """Compensation: an uncaptured authorization was cancelled."""

    ce_type: ClassVar[str] = "shop.payments.payment_voided.v1"
    topic: ClassVar[str] = topics.PAYMENTS
    key_field: ClassVar[str] = "order_id"

    order_id: Id
    payment_id: Id
    provider_payment_id: ProviderId
    amount: MinorUnits
    currency: Currency
    reason: str
    voided_at: UtcDatetime


class PaymentRefunded(Event):
    """Money went back to the customer, for the whole capture (`full`) or part of it."""

    ce_type: ClassVar[str] = "shop.payments.payment_refunded.v1"
    topic: ClassVar[str] = topics.PAYMENTS
    key_field: ClassVar[str] = "order_id"

    order_id: Id
    payment_id: Id
    refund_id: Id
    provider_payment_id: ProviderId
    provider_refund_id: ProviderId
    amount: MinorUnits = Field(gt=0)
    currency: Currency
    full: bool
    reason: str
    refunded_at: UtcDatetime
