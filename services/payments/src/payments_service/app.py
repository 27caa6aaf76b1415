"""ASGI entry point of the payments service: `uvicorn payments_service.app:app`."""

from __future__ import annotations

from fastapi import FastAPI

from payments_service.config import PaymentsSettings
from payments_service.models import messaging
from payments_service.router import router
from shopkit.app import ServiceParts, create_service

def build_app(settings: PaymentsSettings | None = None) -> FastAPI:
    """The service's ASGI app; tests pass settings pointing at their own database and topics."""
    settings = settings or PaymentsSettings()
    return create_service(
        settings,
        title="Payments service",
        description="Stripe PaymentIntents with manual capture, 3-D Secure, webhooks, refunds and risk checks.",
        routers=[router],
        parts=ServiceParts(tables=messaging),
    )


app = build_app()
