"""ASGI entry point of the auth service: `uvicorn auth_service.app:app`."""

from __future__ import annotations

from fastapi import FastAPI
from shopkit.app import ServiceParts, create_service, sessionmaker_of

from auth_service import jobs, runtime
from auth_service.config import AuthSettings
from auth_service.consumers import handlers
from auth_service.inbox import AuthInbox
from auth_service.models import messaging
from auth_service.router import router, wellknown_router


def build_app(settings: AuthSettings | None = None) -> FastAPI:
    """The service's ASGI app; tests pass settings pointing at their own database and topics."""
    settings = settings or AuthSettings()
    return create_service(
        settings,
        title="Auth service",
        description="Credentials, tokens, MFA, login history and password resets.",
        routers=[router, wellknown_router],
        parts=ServiceParts(
            tables=messaging,
            startup=[runtime.start],
            consumers=[handlers],
            # Built after the start-up hooks, so the runtime (Redis, hashers) exists by then.
            inbox=lambda app: AuthInbox(sessionmaker_of(app), messaging, app.state.auth),
            background=[runtime.keep_keys_fresh, jobs.housekeeping],
        ),
    )


app = build_app()
