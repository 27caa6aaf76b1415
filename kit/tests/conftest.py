from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from shopkit.db import create_engine, create_sessionmaker
from shopkit.kafka import ensure_topics
from shopkit.testing import KAFKA_BOOTSTRAP, create_database, drop_database, kafka_namespace
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from .probe import PROBE_TOPIC, metadata


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    url = await create_database("test_kit")
    engine = create_engine(url, pool_size=2)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    await engine.dispose()
    yield url
    await drop_database(url)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


@pytest.fixture
async def namespace() -> str:
    ns = kafka_namespace()
    await ensure_topics(KAFKA_BOOTSTRAP, [ns + PROBE_TOPIC])
    return ns
