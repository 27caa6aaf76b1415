from __future__ import annotations

from shopkit.settings import ServiceSettings, settings_config


class AuthSettings(ServiceSettings):
    """Settings of the auth service (environment variables prefixed `AUTH_`, then `SHOP_`)."""

    model_config = settings_config("AUTH_")
    service_name = "auth"
