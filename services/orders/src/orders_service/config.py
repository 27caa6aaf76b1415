"""Settings of the orders service."""

from __future__ import annotations

from typing import Final

from pydantic import Field, SecretStr
from shopkit.settings import ServiceSettings, settings_config

LINE_QUANTITY_CEILING: Final = 10_000
"""The highest per-line limit a shop may configure: the request schemas refuse more (422); the
configured `max_line_quantity` itself is enforced by the cart and checkout rules (409)."""


class OrdersSettings(ServiceSettings):
    """Settings of the orders service (environment variables prefixed `ORDERS_`, then `SHOP_`)."""

    model_config = settings_config("ORDERS_")
    service_name = "orders"

    database_pool_size: int = Field(default=20, ge=1)

    quote_signing_secret: SecretStr = SecretStr("local_development_only-quote-secret")
    """Shared with shipping, which signs the quotes that checkout verifies
    (`SHOP_QUOTE_SIGNING_SECRET`)."""

    cart_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=60)
    """An untouched cart is forgotten after this long (Redis TTL and PostgreSQL expiry alike)."""
    max_line_quantity: int = Field(default=50, ge=1, le=LINE_QUANTITY_CEILING)
    max_cart_lines: int = Field(default=50, ge=1)

    idempotency_retention_seconds: int = Field(default=24 * 3600, ge=60)
    """How long a checkout's Idempotency-Key keeps answering with the first response."""

    timeline_retention_days: int = Field(default=90, ge=1)
    """Timeline events are kept this long (the inbox and outbox have their own retention)."""

    max_order_wait_seconds: float = Field(default=8.0, ge=0, le=60)
    """Longest a GET /api/orders/{id}?wait_seconds= request waits for a change (keep it under the
    gateway's upstream timeout)."""

    saga_stuck_after_seconds: float = Field(default=30 * 60, gt=0)
    """An order still PENDING or AWAITING_PAYMENT this long after its last change is stuck."""
    fulfilment_stuck_after_seconds: float = Field(default=14 * 24 * 3600, gt=0)
    """An order still CONFIRMED or SHIPPED this long after its last change is stuck."""
    stuck_scan_interval_seconds: float = Field(default=15.0, gt=0)
    housekeeping_interval_seconds: float = Field(default=60.0, gt=0)

    trusted_proxies: list[str] = Field(default_factory=lambda: ["127.0.0.1/32", "::1/128"])
    """Peers (CIDRs) whose X-Forwarded-For is believed (the gateway): the customer IP sent to
    payments."""
