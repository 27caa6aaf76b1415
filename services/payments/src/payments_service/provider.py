"""The payment provider seen by the rest of the service: what it can do, what it answers, and
how it fails. `stripe_provider.StripeProvider` implements it with the official Stripe SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict
from shopkit.transient import Unavailable


class AuthorizeRequest(BaseModel):
    """Everything sent to create and confirm one PaymentIntent; persisted before the call and
    sent again unchanged on a retry (the provider refuses a reused key with other parameters)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    amount: int
    currency: str
    payment_method: str
    metadata: dict[str, str]


@dataclass(frozen=True, slots=True)
class CardDetails:
    fingerprint: str | None
    country: str | None
    brand: str | None
    last4: str | None


@dataclass(frozen=True, slots=True)
class IntentAction:
    """What the customer must do before the intent can proceed (3-D Secure)."""

    type: str
    redirect_url: str | None
    client_secret: str | None


@dataclass(frozen=True, slots=True)
class IntentError:
    code: str | None
    decline_code: str | None
    message: str | None


@dataclass(frozen=True, slots=True)
class Intent:
    """A snapshot of one PaymentIntent as the provider reports it."""

    id: str
    status: str
    """Stripe's status: requires_payment_method, requires_confirmation, requires_action,
    processing, requires_capture, canceled, succeeded."""
    amount: int
    currency: str
    amount_capturable: int
    amount_received: int
    amount_refunded: int
    created: datetime
    metadata: dict[str, str]
    action: IntentAction | None = None
    last_error: IntentError | None = None
    cancellation_reason: str | None = None


@dataclass(frozen=True, slots=True)
class ProviderRefund:
    id: str
    amount: int
    currency: str
    status: str
    payment_intent_id: str | None
    metadata: dict[str, str] = field(default_factory=dict)
    failure_reason: str | None = None


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A verified provider event, with the ids that locate the payment it concerns."""

    id: str
    type: str
    created: datetime
    payment_intent_id: str | None
    payment_id: str | None
    payload: dict[str, Any]


class ProviderError(Exception):
    """The provider did not do what was asked."""


class ProviderUnavailable(ProviderError, Unavailable):  # noqa: N818 - reads as the condition
    """Timeout, connection failure, rate limit or a 5xx: the outcome is unknown, retry later
    with the same idempotency key. An event whose handling meets it is retried until the
    provider is back, never parked (a capture parked after two seconds of 429s was never made)."""


class PaymentDeclined(ProviderError):  # noqa: N818
    """The card or the issuer said no (a final answer for this attempt)."""

    def __init__(
        self, message: str, *, code: str | None, decline_code: str | None, intent: Intent | None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.decline_code = decline_code
        self.intent = intent


class RequestRejected(ProviderError):  # noqa: N818
    """The provider refused the request itself (unknown payment method, invalid state, an
    amount above what is left): retrying the same request cannot succeed."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class InvalidWebhook(ProviderError):  # noqa: N818
    """A webhook whose signature, timestamp or body does not verify."""


class PaymentProvider(Protocol):
    async def card_details(self, payment_method_id: str) -> CardDetails: ...

    async def authorize(self, request: AuthorizeRequest, *, idempotency_key: str) -> Intent:
        """Create and confirm a manual-capture intent; raises `PaymentDeclined` on a decline."""

    async def retrieve(self, intent_id: str) -> Intent: ...

    async def capture(self, intent_id: str, *, amount: int, idempotency_key: str) -> Intent: ...

    async def cancel(
        self, intent_id: str, *, reason: str | None, idempotency_key: str
    ) -> Intent: ...

    async def refund(
        self, intent_id: str, *, amount: int, metadata: dict[str, str], idempotency_key: str
    ) -> ProviderRefund: ...

    async def refunds(self, intent_id: str) -> list[ProviderRefund]: ...

    async def intent_for_payment(self, payment_id: str) -> Intent | None:
        """The intent created for one of our attempts (found by its metadata), if any."""

    def intents(self, *, created_from: datetime, created_to: datetime) -> AsyncIterator[Intent]:
        """Every intent created in [created_from, created_to), newest first."""

    def verify_webhook(self, payload: bytes, signature: str | None) -> WebhookEvent: ...

    async def close(self) -> None: ...
