from __future__ import annotations

from pydantic import Field, SecretStr
from shopkit.settings import ServiceSettings, settings_config


class ShippingSettings(ServiceSettings):
    """Settings of the shipping service (env prefix `SHIPPING_`, then `SHOP_`)."""

    model_config = settings_config("SHIPPING_")
    service_name = "shipping"

    quote_signing_secret: SecretStr = SecretStr("local_development_only-quote-secret")
    """Shared with orders, which verifies the quotes (env SHOP_QUOTE_SIGNING_SECRET)."""
    quote_ttl_seconds: int = Field(default=1800, ge=60)
    origin_cep: str = "01310100"
    """Where parcels leave from (the warehouse)."""
    label_sender: list[str] = Field(
        default_factory=lambda: [
            "Shop Plataforma Ltda",
            "Av. Paulista, 1000 - Bela Vista",
            "Sao Paulo/SP",
            "CEP 01310-100",
        ]
    )

    correios_webhook_secret: SecretStr = SecretStr("local_development_only-correios-webhook")
    veloz_webhook_secret: SecretStr = SecretStr("local_development_only-veloz-webhook")
    webhook_tolerance_seconds: int = Field(default=300, ge=1)
    """Freshness window: a signed webhook older (or further in the future) than this is refused."""

    viacep_base_url: str = "https://viacep.com.br"
    viacep_enabled: bool = True
    viacep_timeout_seconds: float = 2.0
    viacep_backoff_seconds: int = 60
    """After a ViaCEP failure, answer from the offline ranges for this long before trying again."""
    cep_cache_seconds: int = 7 * 24 * 3600

    sandbox_carrier_enabled: bool = False
    """Demo mode: advance open shipments by sending signed webhooks to our public endpoint."""
    sandbox_webhook_base_url: str = ""
    """Where the sandbox sends them; empty means this very app, in-process."""
    sandbox_step_seconds: float = Field(default=20.0, gt=0)
    sandbox_poll_seconds: float = Field(default=2.0, gt=0)

    def webhook_secret(self, carrier: str) -> SecretStr | None:
        secrets = {"correios": self.correios_webhook_secret, "veloz": self.veloz_webhook_secret}
        return secrets.get(carrier)
