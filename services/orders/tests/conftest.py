"""One orders app for the whole run: a fresh migrated database, its own Kafka namespace, the
real relay and consumers running, tokens signed by a key only this run knows."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from orders_service.app import build_app
from orders_service.config import OrdersSettings
from shopkit.db import create_engine
from shopkit.kafka import ensure_topics
from shopkit.testing import (
    KAFKA_BOOTSTRAP,
    TestTokens,
    app_client,
    eventually,
    kafka_namespace,
    migrated_database,
)

from contracts import topics

from .support import Bus, Harness, Watcher


@pytest.fixture(scope="session")
async def harness() -> AsyncIterator[Harness]:
    namespace = kafka_namespace()
    await ensure_topics(KAFKA_BOOTSTRAP, [namespace + topic for topic in topics.ALL])
    async with migrated_database("orders") as url:
        settings = OrdersSettings(
            database_url=url,
            kafka_namespace=namespace,
            database_pool_size=10,
            # Short thresholds so a test can watch an order become stuck.
            saga_stuck_after_seconds=3,
            stuck_scan_interval_seconds=0.5,
            max_line_quantity=10,
        )
        app = build_app(settings)
        tokens = TestTokens()
        bus, watcher = Bus(namespace), Watcher(namespace)
        engine = create_engine(url, pool_size=2)
        await bus.start()
        await watcher.start()
        try:
            async with app_client(app, tokens) as client:

                async def ready() -> bool:
                    return (await client.get("/health/ready")).status_code == 200

                await eventually(ready, timeout=60, interval=0.5)
                yield Harness(
                    app=app,
                    client=client,
                    tokens=tokens,
                    bus=bus,
                    watcher=watcher,
                    settings=settings,
                    engine=engine,
                )
        finally:
            await watcher.stop()
            await bus.stop()
            await engine.dispose()
