from __future__ import annotations

from shopkit.settings import ServiceSettings, settings_config


class ShippingSettings(ServiceSettings):
    """Settings of the shipping service (environment variables prefixed `SHIPPING_`, then `SHOP_`)."""

    model_config = settings_config("SHIPPING_")
    service_name = "shipping"
