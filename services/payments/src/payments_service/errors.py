from __future__ import annotations

from shopkit.problems import (
    BadRequestError,
    ConflictError,
    DomainError,
    NotFoundError,
    ServiceUnavailableError,
    UnauthorizedError,
)


class PaymentNotFoundError(NotFoundError):
    slug = "payment-not-found"
    title = "No payment for this order"


class ReviewNotFoundError(NotFoundError):
    slug = "review-not-found"
    title = "No such payment review"


class InvalidWebhookError(UnauthorizedError):
    """The Stripe-Signature header is the webhook's credential (declared as its security scheme):
    missing, forged, stale or future-dated (or, behind a valid one, an unreadable event) proves
    nothing, so 401. Stripe retries any non-2xx alike."""

    slug = "invalid-webhook"
    title = "Webhook signature or payload rejected"


class IdempotencyKeyRequiredError(BadRequestError):
    slug = "idempotency-key-required"
    title = "An Idempotency-Key header is required"


class IdempotencyKeyReusedError(ConflictError):
    """The key already names a refund of other parameters: a conflict with that refund (the
    data), as Stripe treats it, not a malformed request."""

    slug = "idempotency-key-reused"
    title = "Idempotency-Key already used with other parameters"


class NothingToRefundError(ConflictError):
    slug = "nothing-to-refund"
    title = "No captured payment to refund"


class RefundExceedsCaptureError(ConflictError):
    slug = "refund-exceeds-capture"
    title = "Refund larger than the captured amount left"


class ReviewAlreadyResolvedError(ConflictError):
    slug = "review-already-resolved"
    title = "This review was already resolved"


class ProviderRejectedError(DomainError):
    status = 502
    slug = "payment-provider-rejected"
    title = "The payment provider refused the operation"


class ProviderUnavailableError(ServiceUnavailableError):
    slug = "payment-provider-unavailable"
    title = "The payment provider did not answer; retry with the same Idempotency-Key"
