from __future__ import annotations

import httpx
from pydantic import Field, field_validator
from shopkit.settings import SERVICE_PORTS, ServiceSettings, settings_config

EXPORT_PATHS = {
    "auth": "/api/auth/me/export",
    "catalog": "/api/products/me/export",
    "orders": "/api/orders/me/export",
    "payments": "/api/payments/me/export",
    "shipping": "/api/shipping/me/export",
    "notifications": "/api/notifications/me/export",
}
"""Every other service holding personal data, and its "my data" endpoint."""

EXPORT_SOURCES = {
    name: f"http://127.0.0.1:{SERVICE_PORTS[name]}{path}" for name, path in EXPORT_PATHS.items()
}
"""Those endpoints on the local stack (containers and Kubernetes set `USERS_EXPORT_SOURCES` to
their own host names)."""


class UsersSettings(ServiceSettings):
    """Settings of the users service (env prefix `USERS_`, then `SHOP_`)."""

    model_config = settings_config("USERS_")
    service_name = "users"

    max_addresses: int = Field(default=20, ge=1)
    max_wishlist_items: int = Field(default=200, ge=1)
    deletion_sign_in_max_age_seconds: int = Field(default=600, ge=1)
    """Deleting the account needs a sign-in this recent (password, and code when enabled)."""
    export_sources: dict[str, str] = Field(default_factory=lambda: dict(EXPORT_SOURCES))
    """Other services' "my data" endpoints, called with the caller's own token for the export.
    (Direct service URLs rather than the gateway: an export must not count against a
    customer's rate limit several times over.)"""
    export_timeout_seconds: float = Field(default=5.0, gt=0)

    @field_validator("export_sources")
    @classmethod
    def _absolute_http_urls(cls, sources: dict[str, str]) -> dict[str, str]:
        # Refused at startup rather than failing every export request later.
        for name, url in sources.items():
            try:
                parsed = httpx.URL(url)
            except httpx.InvalidURL as exc:
                raise ValueError(f"export source {name!r}: {exc}") from exc
            if parsed.scheme not in ("http", "https") or not parsed.host:
                raise ValueError(f"export source {name!r} is not an absolute http(s) URL: {url}")
        return sources
