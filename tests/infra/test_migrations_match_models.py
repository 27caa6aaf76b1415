"""Each service's migration history builds exactly what its models declare.

A model saying `BigInteger` over a migration that made `integer` runs fine until a price above
2^31 arrives, then parks the event in a dead-letter topic. Autogenerate's comparison of a
freshly migrated database with the models catches that class of drift before it ships.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from shopkit.migrations import POSTGRES_SERVICES, migrations_dir
from shopkit.testing import migrated_database
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import create_async_engine


def _metadata(service: str) -> MetaData:
    """The metadata the service's `env.py` hands to Alembic."""
    env = (migrations_dir(service) / "env.py").read_text()
    match = re.search(r"from (\w+)\.models import (\w+)", env)
    assert match, f"{service}'s env.py does not import its models"
    module = importlib.import_module(f"{match.group(1)}.models")
    base: Any = getattr(module, match.group(2))
    return base.metadata if hasattr(base, "metadata") else base  # type: ignore[no-any-return]


@pytest.mark.parametrize("service", POSTGRES_SERVICES)
async def test_migrations_build_exactly_the_models(service: str) -> None:
    metadata = _metadata(service)
    async with migrated_database(service) as url:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                differences = await connection.run_sync(
                    lambda sync: compare_metadata(
                        MigrationContext.configure(sync, opts={"compare_type": True}), metadata
                    )
                )
        finally:
            await engine.dispose()
    assert differences == [], f"{service}: migrations and models differ: {differences}"
