"""Domain errors of the notifications service."""

from __future__ import annotations

from shopkit.problems import ConflictError, NotFoundError


class DeliveryNotFoundError(NotFoundError):
    slug = "delivery-not-found"
    title = "Delivery not found"


class DeliveryNotRetryableError(ConflictError):
    slug = "delivery-not-retryable"
    title = "Only failed or uncertain deliveries can be sent again"


class ResetLinkGoneError(ConflictError):
    slug = "reset-link-gone"
    title = "The password reset link is no longer valid; the user must ask for a new one"
