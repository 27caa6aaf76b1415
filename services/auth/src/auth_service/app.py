"""ASGI entry point of the auth service: `uvicorn auth_service.app:app`."""

from __future__ import annotations

from fastapi import FastAPI

from auth_service.config import AuthSettings
from auth_service.models import messaging
from auth_service.router import router
from shopkit.app import ServiceParts, create_service

def build_app(settings: AuthSettings | None = None) -> FastAPI:
    """The service's ASGI app; tests pass settings pointing at their own database and topics."""
    settings = settings or AuthSettings()
    return create_service(
        settings,
        title="Auth service",
        description="Credentials, access and refresh tokens, MFA, login history and password resets.",
        routers=[router],
        parts=ServiceParts(tables=messaging),
    )


app = build_app()
