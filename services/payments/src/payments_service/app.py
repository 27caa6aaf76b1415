"""ASGI entry point of the payments service: `uvicorn payments_service.app:app`."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from shopkit.app import ServiceParts, create_service

from payments_service import runtime
from payments_service.config import PaymentsSettings
from payments_service.consumers import account_handlers, handlers
from payments_service.models import messaging
from payments_service.router import router
from payments_service.service import sweeper, webhooks


async def _process_webhooks(app: FastAPI, stop: asyncio.Event) -> None:
    await webhooks.run(app.state.payments, stop)


async def _sweep(app: FastAPI, stop: asyncio.Event) -> None:
    await sweeper.run(app.state.payments, stop)


def build_app(settings: PaymentsSettings | None = None) -> FastAPI:
    """The service's ASGI app; tests pass settings pointing at their own database and topics."""
    settings = settings or PaymentsSettings()
    return create_service(
        settings,
        title="Payments service",
        description=(
            "Stripe PaymentIntents with manual capture, 3-D Secure, webhooks, refunds and "
            "risk checks."
        ),
        routers=[router],
        parts=ServiceParts(
            tables=messaging,
            consumers=[handlers, account_handlers],
            inbox=runtime.inbox_for,
            startup=[runtime.start],
            shutdown=[runtime.stop],
            background=[_process_webhooks, _sweep],
        ),
    )


app = build_app()
