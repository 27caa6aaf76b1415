"""ASGI entry point of the notifications service: `uvicorn notifications_service.app:app`."""

from __future__ import annotations

from fastapi import FastAPI
from shopkit.app import ServiceParts, create_service

from notifications_service.config import NotificationsSettings
from notifications_service.consumers import handlers
from notifications_service.models import messaging
from notifications_service.router import router
from notifications_service.service.dispatcher import dispatcher_job


def build_app(settings: NotificationsSettings | None = None) -> FastAPI:
    """The service's ASGI app; tests pass settings pointing at their own database and topics."""
    settings = settings or NotificationsSettings()
    return create_service(
        settings,
        title="Notifications service",
        description="Email and SMS from domain events, with a per-user delivery log.",
        routers=[router],
        parts=ServiceParts(tables=messaging, consumers=[handlers], background=[dispatcher_job]),
    )


app = build_app()
