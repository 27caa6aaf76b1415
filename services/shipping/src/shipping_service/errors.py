"""Domain errors of the shipping service, each one problem+json status and slug.

As everywhere on the platform: 422 for what the request schema already refuses, 404 when
something named does not exist (a sku, a shipment, a carrier), 409 when the data refuses it
(items the catalog says are too heavy for parcels, a shipment held for a payment review), 401
for a webhook whose signature (its declared security scheme) proves nothing.
"""

from __future__ import annotations

from shopkit.problems import (
    ConflictError,
    DomainError,
    NotFoundError,
    UnauthorizedError,
    UnprocessableError,
)


class InvalidCepError(UnprocessableError):
    slug = "invalid-cep"
    title = "Invalid CEP"


class CepNotFoundError(NotFoundError):
    slug = "cep-not-found"
    title = "CEP not found"


class UnknownSkuError(NotFoundError):
    slug = "unknown-sku"
    title = "Unknown or unavailable sku"


class InvalidQuoteItemsError(UnprocessableError):
    slug = "invalid-quote-items"
    title = "Invalid quote items"


class QuoteTooHeavyError(ConflictError):
    """Refused on the catalog's weights (data, as an unknown sku is): 409, not 422."""

    slug = "quote-too-heavy"
    title = "Too heavy to ship as parcels"


class ShipmentNotFoundError(NotFoundError):
    slug = "shipment-not-found"
    title = "Shipment not found"


class UnknownCarrierError(NotFoundError):
    slug = "unknown-carrier"
    title = "Unknown carrier"


class InvalidWebhookSignatureError(UnauthorizedError):
    slug = "invalid-webhook-signature"
    title = "Webhook signature rejected"


class StaleWebhookError(UnauthorizedError):
    slug = "stale-webhook"
    title = "Webhook timestamp outside the tolerance window"


class InvalidWebhookPayloadError(UnprocessableError):
    slug = "invalid-webhook-payload"
    title = "Webhook payload invalid"


class UnsupportedLabelFormatError(DomainError):
    status = 406
    slug = "unsupported-label-format"
    title = "Label format not supported"


class ShipmentCancelledError(ConflictError):
    """Its order was cancelled: a label printed now could still send the goods."""

    slug = "shipment-cancelled"
    title = "Shipment cancelled"


class ShipmentOnHoldError(ConflictError):
    """The order's payment is under a fraud review: no label, so the parcel cannot go."""

    slug = "shipment-on-hold"
    title = "Shipment held for payment review"
