from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from shipping_service.app import build_app
from shipping_service.config import ShippingSettings
from shopkit.testing import TestTokens, app_client, kafka_namespace, migrated_database


@dataclass
class Running:
    app: FastAPI
    client: httpx.AsyncClient
    settings: ShippingSettings
    tokens: TestTokens


@pytest.fixture(scope="package")
async def shipping() -> AsyncIterator[Running]:
    """One shipping service for the package: its own database and Kafka namespace."""
    async with migrated_database("shipping") as url:
        settings = ShippingSettings(
            database_url=url,
            kafka_namespace=kafka_namespace(),
            consumer_max_attempts=2,
            # Nothing listens on the discard port: ViaCEP is "down" unless a test says otherwise.
            viacep_base_url="http://127.0.0.1:9",
            viacep_timeout_seconds=0.5,
        )
        tokens = TestTokens()
        app = build_app(settings)
        async with app_client(app, tokens) as client:
            yield Running(app=app, client=client, settings=settings, tokens=tokens)
