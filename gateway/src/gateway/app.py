"""ASGI entry point of the gateway: `uvicorn gateway.app:app`."""

from __future__ import annotations

from fastapi import FastAPI

from gateway.config import GatewaySettings
from gateway.health import router as health_router
from shopkit.app import ServiceParts, create_service

def build_app(settings: GatewaySettings | None = None) -> FastAPI:
    """The service's ASGI app; tests pass settings pointing at their own database and topics."""
    settings = settings or GatewaySettings()
    return create_service(
        settings,
        title="Shop API gateway",
        description="Single entry point of the shop platform's REST API.",
        routers=[health_router],
        parts=ServiceParts(),
    )


app = build_app()
