from __future__ import annotations

from pydantic import Field
from shopkit.edge import DEFAULT_PURGE_CHANNEL
from shopkit.settings import ServiceSettings, settings_config


class CatalogSettings(ServiceSettings):
    """Settings of the catalog service (env prefix `CATALOG_`, then `SHOP_`)."""

    model_config = settings_config("CATALOG_")
    service_name = "catalog"

    mongo_url: str = "mongodb://127.0.0.1:27017/"
    mongo_database: str = "catalog"
    cache_prefix: str = "catalog:"
    """Prefix of every Redis key of this service (test runs use their own)."""
    cache_ttl_seconds: int = Field(default=300, ge=1)
    edge_max_age_seconds: int = Field(default=60, ge=0)
    """How long the gateway may keep public product pages, listings and the category tree
    (0: never). Every write purges them at once; this only bounds a missed purge."""
    edge_purge_channel: str = DEFAULT_PURGE_CHANNEL
    """Redis channel on which the gateway hears that the catalog changed (and so does the
    catalog's relay, for the writes of the other replicas)."""
    relay_signalled_poll_seconds: float = Field(default=5.0, gt=0)
    """How often the outbox relay looks for pending events while it follows that channel
    (otherwise every 0.25 s): a write wakes it at once on any replica."""
    trending_window_days: int = Field(default=7, ge=1, le=30)
    trending_size: int = Field(default=10, ge=1, le=50)
    lock_wait_seconds: float = Field(default=10.0, gt=0)
    """How long a write waits for another write of the same product to finish."""
