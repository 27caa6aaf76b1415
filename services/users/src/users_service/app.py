"""ASGI entry point of the users service: `uvicorn users_service.app:app`."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from shopkit.app import ServiceParts, create_service

from users_service.config import UsersSettings
from users_service.consumers import handlers
from users_service.models import messaging
from users_service.router import router


def build_app(
    settings: UsersSettings | None = None, export_transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """The service's ASGI app; tests pass settings pointing at their own database and topics
    (and a transport reaching in-process services for the data export)."""
    settings = settings or UsersSettings()

    async def open_export_client(app: FastAPI) -> None:
        app.state.export_http = httpx.AsyncClient(
            transport=export_transport, timeout=settings.export_timeout_seconds
        )

    async def close_export_client(app: FastAPI) -> None:
        await app.state.export_http.aclose()

    return create_service(
        settings,
        title="Users service",
        description="Profiles, addresses, preferences, wishlists, data export and deletion.",
        routers=[router],
        parts=ServiceParts(
            tables=messaging,
            consumers=[handlers],
            startup=[open_export_client],
            shutdown=[close_export_client],
        ),
    )


app = build_app()
