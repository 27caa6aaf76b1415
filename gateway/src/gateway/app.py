"""ASGI entry point of the gateway: `uvicorn gateway.app:app`."""

from __future__ import annotations

from gateway.config import GatewaySettings
from gateway.health import router as health_router
from shopkit.app import ServiceParts, create_service

settings = GatewaySettings()

app = create_service(
    settings,
    title="Shop API gateway",
    description="Single entry point of the shop platform's REST API.",
    routers=[health_router],
    parts=ServiceParts(),
)
