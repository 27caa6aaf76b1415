from __future__ import annotations

from shopkit.settings import ServiceSettings, settings_config


class UsersSettings(ServiceSettings):
    """Settings of the users service (environment variables prefixed `USERS_`, then `SHOP_`)."""

    model_config = settings_config("USERS_")
    service_name = "users"
