from __future__ import annotations

from shopkit.settings import ServiceSettings, settings_config


class OrdersSettings(ServiceSettings):
    """Settings of the orders service (environment variables prefixed `ORDERS_`, then `SHOP_`)."""

    model_config = settings_config("ORDERS_")
    service_name = "orders"
