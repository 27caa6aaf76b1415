from __future__ import annotations

from shopkit.settings import ServiceSettings, settings_config


class InventorySettings(ServiceSettings):
    """Settings of the inventory service (environment variables prefixed `INVENTORY_`, then `SHOP_`)."""

    model_config = settings_config("INVENTORY_")
    service_name = "inventory"
