from __future__ import annotations

from pydantic import Field, SecretStr, model_validator
from shopkit.settings import ServiceSettings, settings_config


class PaymentsSettings(ServiceSettings):
    """Settings of the payments service (environment variables `PAYMENTS_*`, then `SHOP_*`)."""

    model_config = settings_config("PAYMENTS_")
    service_name = "payments"

    stripe_api_key: SecretStr = SecretStr("sk_test_local_development_only")
    stripe_api_base: str = "http://127.0.0.1:8420"
    """localstripe locally; https://api.stripe.com in production."""
    stripe_webhook_secret: SecretStr = SecretStr("whsec_local_development_only")
    stripe_webhook_tolerance_seconds: int = Field(default=300, ge=1)
    stripe_timeout_seconds: float = Field(default=10.0, gt=0)
    stripe_max_network_retries: int = Field(default=2, ge=0)
    """Retries of the SDK itself (same idempotency key); the consumer retries on top of them."""
    provider_namespace: str = ""
    """Tag written in every PaymentIntent's metadata so reconciliation only compares this
    deployment's intents; defaults to the Kafka namespace (isolated test runs) or `shop`."""

    webhook_poll_seconds: float = Field(default=1.0, gt=0)
    webhook_max_attempts: int = Field(default=10, ge=1)
    sweep_interval_seconds: float = Field(default=15.0, gt=0)
    """How often intents waiting on the customer (3DS) or on an unknown outcome are re-fetched,
    in case a webhook was lost."""
    sweep_pending_after_seconds: float = Field(default=60.0, ge=0)
    capture_authorized_after_seconds: float = Field(default=6 * 86_400, ge=0)
    """An authorization no dispatch has captured yet is captured this long after it was made:
    the provider lets an uncaptured hold lapse (Stripe: after 7 days), and a lapse racing a late
    dispatch would let the parcel go unpaid. A later cancellation refunds it instead."""

    risk_enabled: bool = True
    risk_key_prefix: str = ""
    """Redis prefix of the velocity counters; defaults to `<kafka_namespace>payments:risk:`."""
    risk_velocity_window_seconds: int = Field(default=3600, ge=1)
    risk_user_attempts_medium: int = Field(default=10, ge=1)
    risk_user_attempts_high: int = Field(default=30, ge=1)
    risk_ip_attempts_medium: int = Field(default=20, ge=1)
    risk_ip_attempts_high: int = Field(default=60, ge=1)
    risk_card_attempts_medium: int = Field(default=10, ge=1)
    risk_card_attempts_high: int = Field(default=30, ge=1)
    risk_amount_review: int = Field(default=300_000, ge=0)
    """Orders from this total (minor units) are flagged for review."""
    risk_amount_block: int = Field(default=2_000_000, ge=0)
    """Orders from this total are declined."""
    risk_country_mismatch_score: int = Field(default=25, ge=0)
    risk_medium_score: int = Field(default=40, ge=1)
    risk_high_score: int = Field(default=75, ge=1)

    @model_validator(mode="after")
    def _derive_defaults(self) -> PaymentsSettings:
        if not self.provider_namespace:
            self.provider_namespace = self.kafka_namespace.rstrip(".") or "shop"
        if not self.risk_key_prefix:
            self.risk_key_prefix = f"{self.kafka_namespace}payments:risk:"
        if self.environment == "production" and "api.stripe.com" not in self.stripe_api_base:
            # A real deployment talking to a stand-in would take no real money and say it did.
            raise ValueError(
                f"stripe_api_base={self.stripe_api_base} is a local stand-in; "
                f"environment={self.environment} needs https://api.stripe.com"
            )
        return self
