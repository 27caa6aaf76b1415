"""ASGI entry point of the users service: `uvicorn users_service.app:app`."""

from __future__ import annotations

from fastapi import FastAPI

from users_service.config import UsersSettings
from users_service.models import messaging
from users_service.router import router
from shopkit.app import ServiceParts, create_service

def build_app(settings: UsersSettings | None = None) -> FastAPI:
    """The service's ASGI app; tests pass settings pointing at their own database and topics."""
    settings = settings or UsersSettings()
    return create_service(
        settings,
        title="Users service",
        description="Profiles, addresses, notification preferences and wishlists.",
        routers=[router],
        parts=ServiceParts(tables=messaging),
    )


app = build_app()
