"""ASGI entry point of the auth service: `uvicorn auth_service.app:app`."""

from __future__ import annotations

from auth_service.config import AuthSettings
from auth_service.models import messaging
from auth_service.router import router
from shopkit.app import ServiceParts, create_service

settings = AuthSettings()

app = create_service(
    settings,
    title="Auth service",
    description="Credentials, access and refresh tokens, MFA, login history and password resets.",
    routers=[router],
    parts=ServiceParts(tables=messaging),
)
