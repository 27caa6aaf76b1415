"""ASGI entry point of the payments service: `uvicorn payments_service.app:app`."""

from __future__ import annotations

from payments_service.config import PaymentsSettings
from payments_service.models import messaging
from payments_service.router import router
from shopkit.app import ServiceParts, create_service

settings = PaymentsSettings()

app = create_service(
    settings,
    title="Payments service",
    description="Stripe PaymentIntents with manual capture, 3-D Secure, webhooks, refunds and risk checks.",
    routers=[router],
    parts=ServiceParts(tables=messaging),
)
