"""Alembic for every service: one shared `env.py` body and programmatic upgrades.

Each service keeps its own `migrations/` folder (its database, its history); its `env.py`
calls `run_migrations(metadata, url)`. `shop db upgrade --all` applies every service's history.
"""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

POSTGRES_SERVICES = (
    "auth",
    "users",
    "inventory",
    "orders",
    "payments",
    "shipping",
    "notifications",
)


def _do_run(connection: Connection, metadata: MetaData) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        compare_server_default=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online(metadata: MetaData, url: str) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_do_run, metadata)
    finally:
        await engine.dispose()


def run_migrations(metadata: MetaData, url: str) -> None:
    """The body of a service's `env.py`."""
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    override = context.config.get_main_option("sqlalchemy.url")
    asyncio.run(_run_online(metadata, override or url))


def migrations_dir(service: str) -> Path:
    package = importlib.import_module(f"{service}_service")
    assert package.__file__ is not None
    return Path(package.__file__).resolve().parents[2] / "migrations"


def alembic_config(service: str, url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir(service)))
    if url:
        config.set_main_option("sqlalchemy.url", url)
    return config


def upgrade(service: str, url: str | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(service, url), revision)
