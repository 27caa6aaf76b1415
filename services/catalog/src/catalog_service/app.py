"""ASGI entry point of the catalog service: `uvicorn catalog_service.app:app`."""

from __future__ import annotations

from catalog_service.config import CatalogSettings
from catalog_service.router import router
from shopkit.app import ServiceParts, create_service

settings = CatalogSettings()

app = create_service(
    settings,
    title="Catalog service",
    description="Products, categories, reviews and search, stored in MongoDB.",
    routers=[router],
    parts=ServiceParts(mongo_url=settings.mongo_url),
)
