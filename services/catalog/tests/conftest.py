from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from catalog_service.app import build_app
from catalog_service.config import CatalogSettings
from fastapi import FastAPI
from redis.asyncio import Redis
from shopkit.migrations import migrations_dir
from shopkit.mongo import create_client
from shopkit.mongo_migrations import upgrade
from shopkit.testing import TestTokens, app_client, delete_keys, kafka_namespace, unique_suffix


@dataclass
class Running:
    app: FastAPI
    client: httpx.AsyncClient
    settings: CatalogSettings
    tokens: TestTokens

    @property
    def namespace(self) -> str:
        return self.settings.kafka_namespace

    @property
    def db(self) -> Any:
        return self.app.state.catalog.db

    def admin(self) -> dict[str, str]:
        return self.tokens.headers(roles=("customer", "admin"))


@asynccontextmanager
async def migrated_catalog() -> AsyncIterator[str]:
    """A fresh catalog database on the MongoDB-wire server, with every migration applied."""
    name = f"test_catalog_{unique_suffix()}"
    client = create_client(CatalogSettings().mongo_url, app_name="catalog-tests")
    try:
        await upgrade(client[name], migrations_dir("catalog") / "versions")
        yield name
    finally:
        await client.drop_database(name)
        await client.close()


@asynccontextmanager
async def running_catalog(**overrides: Any) -> AsyncIterator[Running]:
    async with migrated_catalog() as database:
        prefix = f"test-catalog-{unique_suffix()}:"
        settings = CatalogSettings(
            **{
                "mongo_database": database,
                "kafka_namespace": kafka_namespace(),
                "cache_prefix": prefix,
                "edge_purge_channel": f"{prefix}edge:purge",
                "consumer_max_attempts": 3,
                **overrides,
            }
        )
        tokens = TestTokens()
        app = build_app(settings)
        try:
            async with app_client(app, tokens) as client:
                yield Running(app=app, client=client, settings=settings, tokens=tokens)
        finally:
            redis = Redis.from_url(CatalogSettings().redis_url)
            await delete_keys(redis, prefix)
            await redis.aclose()


@pytest.fixture(scope="package")
async def catalog() -> AsyncIterator[Running]:
    async with running_catalog() as service:
        yield service
