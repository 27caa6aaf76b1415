from __future__ import annotations

from pydantic import Field
from shopkit.settings import ServiceSettings, settings_config


class InventorySettings(ServiceSettings):
    """Settings of the inventory service (env prefix `INVENTORY_`, then `SHOP_`)."""

    model_config = settings_config("INVENTORY_")
    service_name = "inventory"

    reservation_ttl_seconds: int = Field(default=900, ge=1)
    """How long an order's stock is held while its payment is attempted."""
    reservation_extension_seconds: int = Field(default=900, ge=1)
    """The hold granted from the moment a payment needs customer action (3-D Secure)."""
    low_stock_threshold: int = Field(default=5, ge=0)
    """Default level below which `StockLow` is announced (a sku may override it)."""
    sweep_interval_seconds: float = Field(default=5.0, gt=0)
    sweep_batch_size: int = Field(default=200, ge=1)
