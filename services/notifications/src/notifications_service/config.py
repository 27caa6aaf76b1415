from __future__ import annotations

from shopkit.settings import ServiceSettings, settings_config


class NotificationsSettings(ServiceSettings):
    """Settings of the notifications service (environment variables prefixed `NOTIFICATIONS_`, then `SHOP_`)."""

    model_config = settings_config("NOTIFICATIONS_")
    service_name = "notifications"
