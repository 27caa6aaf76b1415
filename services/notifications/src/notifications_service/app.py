"""ASGI entry point of the notifications service: `uvicorn notifications_service.app:app`."""

from __future__ import annotations

from fastapi import FastAPI

from notifications_service.config import NotificationsSettings
from notifications_service.models import messaging
from notifications_service.router import router
from shopkit.app import ServiceParts, create_service

def build_app(settings: NotificationsSettings | None = None) -> FastAPI:
    """The service's ASGI app; tests pass settings pointing at their own database and topics."""
    settings = settings or NotificationsSettings()
    return create_service(
        settings,
        title="Notifications service",
        description="Email and SMS rendered from templates when domain events happen.",
        routers=[router],
        parts=ServiceParts(tables=messaging),
    )


app = build_app()
