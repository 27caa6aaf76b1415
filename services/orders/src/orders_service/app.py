"""ASGI entry point of the orders service: `uvicorn orders_service.app:app`."""

from __future__ import annotations

from fastapi import FastAPI
from shopkit.app import ServiceParts, create_service

from orders_service.cache import CartCache
from orders_service.changes import OrderChanges
from orders_service.config import OrdersSettings
from orders_service.consumers import (
    account_handlers,
    account_inbox,
    catalog_handlers,
    orders_inbox,
    saga_handlers,
)
from orders_service.jobs import (
    export_stuck_sagas,
    housekeeping,
    listen_for_order_changes,
    run_timeline_consumer,
)
from orders_service.models import messaging
from orders_service.router import router

DESCRIPTION = "Carts, coupons, orders and their status history: where the checkout saga starts."


async def _cart_cache_and_changes(app: FastAPI) -> None:
    settings: OrdersSettings = app.state.settings
    app.state.order_changes = OrderChanges()
    app.state.cart_cache = CartCache(
        app.state.redis,
        prefix=f"{settings.kafka_namespace}orders:cart:",
        ttl_seconds=settings.cart_ttl_seconds,
    )


def build_app(settings: OrdersSettings | None = None) -> FastAPI:
    """The service's ASGI app; tests pass settings pointing at their own database and topics."""
    settings = settings or OrdersSettings()
    return create_service(
        settings,
        title="Orders service",
        description=DESCRIPTION,
        routers=[router],
        parts=ServiceParts(
            tables=messaging,
            consumers=[saga_handlers, catalog_handlers, account_handlers],
            inbox=orders_inbox,
            inboxes={account_handlers.name: account_inbox},
            startup=[_cart_cache_and_changes],
            background=[
                run_timeline_consumer,
                listen_for_order_changes,
                export_stuck_sagas,
                housekeeping,
            ],
        ),
    )


app = build_app()
