from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from inventory_service.app import build_app
from inventory_service.config import InventorySettings
from shopkit.testing import TestTokens, app_client, kafka_namespace, migrated_database


@dataclass
class Running:
    app: FastAPI
    client: httpx.AsyncClient
    settings: InventorySettings
    tokens: TestTokens

    @property
    def namespace(self) -> str:
        return self.settings.kafka_namespace

    @property
    def database_url(self) -> str:
        return self.settings.database_url

    def admin(self) -> dict[str, str]:
        return self.tokens.headers(roles=("customer", "admin"))


@asynccontextmanager
async def running_inventory(**overrides: Any) -> AsyncIterator[Running]:
    """An inventory service with its own database and Kafka namespace, consumers and sweeper on."""
    async with migrated_database("inventory") as url:
        settings = InventorySettings(
            database_url=url,
            kafka_namespace=kafka_namespace(),
            consumer_max_attempts=3,
            **overrides,
        )
        tokens = TestTokens()
        app = build_app(settings)
        async with app_client(app, tokens) as client:
            yield Running(app=app, client=client, settings=settings, tokens=tokens)


@pytest.fixture(scope="package")
async def inventory() -> AsyncIterator[Running]:
    async with running_inventory() as service:
        yield service
