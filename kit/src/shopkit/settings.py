"""Settings base: one env prefix per service, shared `SHOP_` fallbacks, safe local defaults.

Every service subclasses `ServiceSettings` with its own prefix (`ORDERS_`); a variable with the
service prefix wins over the shared `SHOP_` one, which wins over the default. Defaults point at
the local stack. Outside development, a secret still holding a placeholder is a start-up error.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from shopkit.kafka import KafkaSecurity

Environment = Literal["development", "test", "staging", "production"]

PLACEHOLDER_MARKERS = (
    "change-me",
    "changeme",
    "local_development_only",
    "development-only",
    "placeholder",
)
"""Substrings that mark a default secret unfit for a real deployment."""

SERVICE_PORTS: dict[str, int] = {
    "gateway": 8000,
    "auth": 8001,
    "users": 8002,
    "catalog": 8003,
    "inventory": 8004,
    "orders": 8005,
    "payments": 8006,
    "shipping": 8007,
    "notifications": 8008,
}


def local_database_url(database: str) -> str:
    return f"postgresql+asyncpg://shop:shop@127.0.0.1:5432/{database}"


class ServiceSettings(BaseSettings):
    """What every service needs to run; subclasses add their own fields and env prefix."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    service_name: ClassVar[str] = "service"

    environment: Environment = "development"
    log_level: str = "INFO"
    host: str = "127.0.0.1"
    port: int = 0

    database_url: str = ""
    database_pool_size: int = 10
    database_pre_ping: bool = False
    """Ping each pooled connection before use (see shopkit.db.create_engine for the trade-off)."""
    redis_url: str = "redis://127.0.0.1:6379/0"
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_namespace: str = ""
    """Prefix of every topic and consumer group this process uses. Empty in real deployments;
    test runs set a unique one to stay isolated on a shared broker."""

    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = None

    jwks_url: str = "http://127.0.0.1:8001/.well-known/jwks.json"
    jwt_issuer: str = "http://127.0.0.1:8001"
    jwt_audience: str = "shop"

    otel_exporter: Literal["none", "otlp", "console", "memory"] = "none"
    otel_endpoint: str = "http://127.0.0.1:4318"

    relay_enabled: bool = True
    consumers_enabled: bool = True
    consumer_max_attempts: int = Field(default=5, ge=1)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        shared = EnvSettingsSource(settings_cls, env_prefix="SHOP_", case_sensitive=False)
        return init_settings, env_settings, shared, dotenv_settings, file_secret_settings

    @model_validator(mode="after")
    def _fill_defaults_and_refuse_placeholders(self) -> ServiceSettings:
        if not self.port:
            self.port = SERVICE_PORTS.get(self.service_name, 8000)
        if not self.database_url:
            self.database_url = local_database_url(self.service_name)
        if self.environment in ("staging", "production"):
            unused = self.unused_secrets()
            for name, value in self:
                if name in unused:
                    continue
                if isinstance(value, SecretStr) and _is_placeholder(value.get_secret_value()):
                    raise ValueError(
                        f"{name} still holds a development placeholder; set a real secret "
                        f"for environment={self.environment}"
                    )
        return self

    def unused_secrets(self) -> frozenset[str]:
        """Secret settings this configuration never reads (another backend's), so a real
        deployment need not invent values for them; every other one must be set."""
        return frozenset()

    @property
    def is_development(self) -> bool:
        return self.environment in ("development", "test")

    def kafka_security(self) -> KafkaSecurity:
        password = self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None
        return KafkaSecurity(
            protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_username=self.kafka_sasl_username,
            sasl_password=password,
            ssl_cafile=self.kafka_ssl_cafile,
        )

    def consumer_group(self, name: str = "") -> str:
        base = f"{self.service_name}-{name}" if name else self.service_name
        return f"{self.kafka_namespace}{base}"


def _is_placeholder(secret: str) -> bool:
    lowered = secret.lower()
    return not secret or any(marker in lowered for marker in PLACEHOLDER_MARKERS)


def settings_config(prefix: str) -> SettingsConfigDict:
    """The `model_config` of a service's settings: its env prefix plus the shared defaults."""
    return SettingsConfigDict(env_prefix=prefix, extra="ignore", case_sensitive=False)
