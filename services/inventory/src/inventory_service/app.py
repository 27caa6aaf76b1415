"""ASGI entry point of the inventory service: `uvicorn inventory_service.app:app`."""

from __future__ import annotations

from fastapi import FastAPI
from shopkit.app import ServiceParts, create_service, sessionmaker_of

from inventory_service.config import InventorySettings
from inventory_service.consumers import products, saga
from inventory_service.inbox import InventoryInbox
from inventory_service.jobs import reservation_sweeper
from inventory_service.models import messaging
from inventory_service.router import router
from inventory_service.service import StockPolicy


def build_app(settings: InventorySettings | None = None) -> FastAPI:
    """The service's ASGI app; tests pass settings pointing at their own database and topics."""
    settings = settings or InventorySettings()
    policy = StockPolicy.from_settings(settings)
    return create_service(
        settings,
        title="Inventory service",
        description="Stock levels per SKU and the reservations of the checkout saga.",
        routers=[router],
        parts=ServiceParts(
            tables=messaging,
            consumers=[saga, products],
            inbox=lambda app: InventoryInbox(sessionmaker_of(app), messaging, policy),
            background=[reservation_sweeper],
        ),
    )


app = build_app()
