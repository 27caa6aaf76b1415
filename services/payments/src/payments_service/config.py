from __future__ import annotations

from shopkit.settings import ServiceSettings, settings_config


class PaymentsSettings(ServiceSettings):
    """Settings of the payments service (environment variables prefixed `PAYMENTS_`, then `SHOP_`)."""

    model_config = settings_config("PAYMENTS_")
    service_name = "payments"
