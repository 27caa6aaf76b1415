"""ASGI entry point of the shipping service: `uvicorn shipping_service.app:app`."""

from __future__ import annotations

from fastapi import FastAPI
from shopkit.app import ServiceParts, create_service

from shipping_service.config import ShippingSettings
from shipping_service.consumers import account_handlers, handlers
from shipping_service.models import messaging
from shipping_service.router import router
from shipping_service.sandbox import sandbox_job


def build_app(settings: ShippingSettings | None = None) -> FastAPI:
    """The service's ASGI app; tests pass settings pointing at their own database and topics."""
    settings = settings or ShippingSettings()
    return create_service(
        settings,
        title="Shipping service",
        description="Carriers, rate tables, quotes, shipments, labels and carrier webhooks.",
        routers=[router],
        parts=ServiceParts(
            tables=messaging, consumers=[handlers, account_handlers], background=[sandbox_job]
        ),
    )


app = build_app()
