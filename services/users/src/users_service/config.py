from __future__ import annotations

from pydantic import Field
from shopkit.settings import ServiceSettings, settings_config


class UsersSettings(ServiceSettings):
    """Settings of the users service (env prefix `USERS_`, then `SHOP_`)."""

    model_config = settings_config("USERS_")
    service_name = "users"

    max_addresses: int = Field(default=20, ge=1)
    max_wishlist_items: int = Field(default=200, ge=1)
    export_sources: dict[str, str] = Field(
        default_factory=lambda: {
            "shipping": "http://127.0.0.1:8007/api/shipping/me/export",
            "notifications": "http://127.0.0.1:8008/api/notifications/me/export",
        }
    )
    """Other services' "my data" endpoints, called with the caller's own token for the export.
    (Direct service URLs rather than the gateway: an export must not count against a
    customer's rate limit several times over.)"""
    export_timeout_seconds: float = Field(default=5.0, gt=0)
