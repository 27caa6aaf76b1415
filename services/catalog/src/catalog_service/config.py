from __future__ import annotations

from shopkit.settings import ServiceSettings, settings_config


class CatalogSettings(ServiceSettings):
    """Settings of the catalog service (environment variables prefixed `CATALOG_`, then `SHOP_`)."""

    model_config = settings_config("CATALOG_")
    service_name = "catalog"

    mongo_url: str = "mongodb://127.0.0.1:27017/"
    mongo_database: str = "catalog"
