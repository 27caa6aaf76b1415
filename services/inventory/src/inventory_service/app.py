"""ASGI entry point of the inventory service: `uvicorn inventory_service.app:app`."""

from __future__ import annotations

from fastapi import FastAPI

from inventory_service.config import InventorySettings
from inventory_service.models import messaging
from inventory_service.router import router
from shopkit.app import ServiceParts, create_service

def build_app(settings: InventorySettings | None = None) -> FastAPI:
    """The service's ASGI app; tests pass settings pointing at their own database and topics."""
    settings = settings or InventorySettings()
    return create_service(
        settings,
        title="Inventory service",
        description="Stock levels per SKU and the reservations of the checkout saga.",
        routers=[router],
        parts=ServiceParts(tables=messaging),
    )


app = build_app()
