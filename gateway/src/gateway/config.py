from __future__ import annotations

from pydantic import Field

from shopkit.settings import SERVICE_PORTS, ServiceSettings, settings_config


def _local_upstreams() -> dict[str, str]:
    return {name: f"http://127.0.0.1:{port}" for name, port in SERVICE_PORTS.items() if name != "gateway"}


class GatewaySettings(ServiceSettings):
    """Settings of the gateway (environment variables prefixed `GATEWAY_`, then `SHOP_`)."""

    model_config = settings_config("GATEWAY_")
    service_name = "gateway"

    upstreams: dict[str, str] = Field(default_factory=_local_upstreams)
    """Base URL of each service, by service name."""
