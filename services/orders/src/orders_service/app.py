"""ASGI entry point of the orders service: `uvicorn orders_service.app:app`."""

from __future__ import annotations

from fastapi import FastAPI

from orders_service.config import OrdersSettings
from orders_service.models import messaging
from orders_service.router import router
from shopkit.app import ServiceParts, create_service

def build_app(settings: OrdersSettings | None = None) -> FastAPI:
    """The service's ASGI app; tests pass settings pointing at their own database and topics."""
    settings = settings or OrdersSettings()
    return create_service(
        settings,
        title="Orders service",
        description="Carts, coupons, orders and their status history: where the checkout saga starts.",
        routers=[router],
        parts=ServiceParts(tables=messaging),
    )


app = build_app()
