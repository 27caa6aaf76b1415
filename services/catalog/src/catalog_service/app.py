"""ASGI entry point of the catalog service: `uvicorn catalog_service.app:app`."""

from __future__ import annotations

import asyncio
from functools import partial

from fastapi import FastAPI
from shopkit.app import ServiceParts, create_service
from shopkit.edge import follow_purges
from shopkit.loops import every
from shopkit.mongo_outbox import MongoInbox

from catalog_service.config import CatalogSettings
from catalog_service.consumers import CatalogContext, account_handlers, handlers
from catalog_service.resources import Catalog, RelayWakeups, open_catalog
from catalog_service.router import router
from catalog_service.service.reviews import settle_ratings

CACHE_SETTLE_SECONDS = 0.5
RATING_SETTLE_SECONDS = 1.0


async def outbox_relay(app: FastAPI, stop: asyncio.Event) -> None:
    """Publish the events waiting in product documents (every replica runs it; one leads)."""
    settings: CatalogSettings = app.state.settings
    if settings.relay_enabled:
        await app.state.catalog.relay.run(stop)


async def relay_wakeups(app: FastAPI, stop: asyncio.Event) -> None:
    """Wake the relay for the writes of every replica, heard on the edge purge channel."""
    settings: CatalogSettings = app.state.settings
    if not settings.relay_enabled:
        return
    catalog: Catalog = app.state.catalog
    await follow_purges(
        settings.redis_url, settings.edge_purge_channel, RelayWakeups(catalog.relay), stop
    )


async def cache_invalidations(app: FastAPI, stop: asyncio.Event) -> None:
    """Send the cache invalidation owed since startup, or since a write during a Redis outage."""
    catalog: Catalog = app.state.catalog
    await every(stop, CACHE_SETTLE_SECONDS, catalog.cache.settle, name="cache-invalidation")


async def rating_recounts(app: FastAPI, stop: asyncio.Event) -> None:
    """Recount the ratings a review left owed because its product was busy."""
    catalog: Catalog = app.state.catalog
    await every(
        stop, RATING_SETTLE_SECONDS, partial(settle_ratings, catalog), name="rating-recount"
    )


def _inbox(app: FastAPI) -> MongoInbox[CatalogContext]:
    catalog: Catalog = app.state.catalog
    return MongoInbox(
        catalog.db,
        app.state.redis,
        lambda db, envelope: CatalogContext(db, envelope, catalog),
        prefix=f"{catalog.settings.cache_prefix}inbox:",
    )


def build_app(settings: CatalogSettings | None = None) -> FastAPI:
    """The service's ASGI app; tests pass settings pointing at their own database and topics."""
    settings = settings or CatalogSettings()
    return create_service(
        settings,
        title="Catalog service",
        description="Products, categories, reviews and search, stored in MongoDB.",
        routers=[router],
        parts=ServiceParts(
            mongo_url=settings.mongo_url,
            startup=[open_catalog],
            consumers=[handlers, account_handlers],
            inbox=_inbox,
            background=[outbox_relay, relay_wakeups, cache_invalidations, rating_recounts],
        ),
    )


app = build_app()
