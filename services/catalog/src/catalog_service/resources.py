"""What the catalog's routes, consumers and jobs share: its database, cache, locks and relay."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from shopkit.mongo_outbox import Database, DocumentLocks, MongoOutboxRelay, MongoRelayConfig

from catalog_service.config import CatalogSettings
from catalog_service.repository.cache import Cache
from catalog_service.repository.products import PRODUCTS
from catalog_service.repository.trending import Trending


@dataclass
class Catalog:
    settings: CatalogSettings
    db: Database
    cache: Cache
    trending: Trending
    locks: DocumentLocks
    relay: MongoOutboxRelay

    async def changed(self) -> None:
        """After every write: drop cached pages and listings, and publish the new events now."""
        await self.cache.invalidate()
        self.relay.wake()


async def open_catalog(app: FastAPI) -> None:
    """Startup hook: build the shared resources on the clients `create_service` opened."""
    settings: CatalogSettings = app.state.settings
    db: Database = app.state.mongo[settings.mongo_database]
    app.state.catalog = Catalog(
        settings=settings,
        db=db,
        cache=Cache(
            app.state.redis,
            prefix=settings.cache_prefix,
            ttl_seconds=settings.cache_ttl_seconds,
            purge_channel=settings.edge_purge_channel,
        ),
        trending=Trending(
            app.state.redis,
            prefix=settings.cache_prefix,
            retention_days=settings.trending_window_days,
        ),
        locks=DocumentLocks(db, timeout=settings.lock_wait_seconds),
        relay=MongoOutboxRelay(
            db,
            MongoRelayConfig(
                service=settings.service_name,
                bootstrap=settings.kafka_bootstrap,
                collections=[PRODUCTS],
                topic_namespace=settings.kafka_namespace,
                signalled_idle_poll_seconds=settings.relay_signalled_poll_seconds,
            ),
        ),
    )


class RelayWakeups:
    """Every catalog write, on any replica, publishes a purge on the edge channel: the relay
    hears it too, and its idle poll becomes a safety net."""

    def __init__(self, relay: MongoOutboxRelay) -> None:
        self.relay = relay

    def subscribed(self) -> None:
        self.relay.signalled = True
        self.relay.wake()  # a write published before the subscription was not heard

    def purged(self, key: str) -> None:
        self.relay.wake()

    def lost(self) -> None:
        self.relay.signalled = False


async def catalog_of(request: Request) -> Catalog:
    catalog: Catalog = request.app.state.catalog
    return catalog


CatalogDep = Annotated[Catalog, Depends(catalog_of)]
