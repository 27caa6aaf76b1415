"""ASGI entry point of the catalog service: `uvicorn catalog_service.app:app`."""

from __future__ import annotations

from fastapi import FastAPI

from catalog_service.config import CatalogSettings
from catalog_service.router import router
from shopkit.app import ServiceParts, create_service

def build_app(settings: CatalogSettings | None = None) -> FastAPI:
    """The service's ASGI app; tests pass settings pointing at their own database and topics."""
    settings = settings or CatalogSettings()
    return create_service(
        settings,
        title="Catalog service",
        description="Products, categories, reviews and search, stored in MongoDB.",
        routers=[router],
        parts=ServiceParts(mongo_url=settings.mongo_url),
    )


app = build_app()
