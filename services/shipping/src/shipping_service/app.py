"""ASGI entry point of the shipping service: `uvicorn shipping_service.app:app`."""

from __future__ import annotations

from fastapi import FastAPI

from shipping_service.config import ShippingSettings
from shipping_service.models import messaging
from shipping_service.router import router
from shopkit.app import ServiceParts, create_service

def build_app(settings: ShippingSettings | None = None) -> FastAPI:
    """The service's ASGI app; tests pass settings pointing at their own database and topics."""
    settings = settings or ShippingSettings()
    return create_service(
        settings,
        title="Shipping service",
        description="Carriers, rate tables, quotes, shipments, labels and carrier tracking webhooks.",
        routers=[router],
        parts=ServiceParts(tables=messaging),
    )


app = build_app()
