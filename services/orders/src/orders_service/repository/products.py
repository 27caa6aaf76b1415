"""The catalog projection: products as `catalog.events` last described them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from shopkit.db import equals_any
from sqlalchemy import String, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from orders_service.models import Product
from orders_service.pricing import PricedProduct

_COLUMNS = (
    Product.product_id,
    Product.sku,
    Product.name,
    Product.price,
    Product.currency,
    Product.is_active,
)
# Built once: every cart change runs it.
_BY_SKUS = select(*_COLUMNS).where(equals_any(Product.sku, "skus", String()))


async def upsert_snapshot(
    session: AsyncSession,
    *,
    product_id: str,
    sku: str,
    name: str,
    price: int,
    currency: str,
    is_active: bool,
    version: int,
    at: datetime,
) -> None:
    """Store a product's whole sellable state unless a newer version is already applied."""
    values = {
        "product_id": product_id,
        "sku": sku,
        "name": name,
        "price": price,
        "currency": currency,
        "is_active": is_active,
        "version": version,
        "updated_at": at,
    }
    statement = insert(Product).values(values)
    statement = statement.on_conflict_do_update(
        index_elements=[Product.product_id],
        set_={k: statement.excluded[k] for k in values if k != "product_id"},
        where=Product.version < statement.excluded.version,
    )
    await session.execute(statement)


async def apply_price(
    session: AsyncSession, *, product_id: str, price: int, currency: str, version: int, at: datetime
) -> None:
    await session.execute(
        update(Product)
        .where(Product.product_id == product_id, Product.version < version)
        .values(price=price, currency=currency, version=version, updated_at=at)
    )


async def deactivate(session: AsyncSession, *, product_id: str, version: int, at: datetime) -> None:
    await session.execute(
        update(Product)
        .where(Product.product_id == product_id, Product.version < version)
        .values(is_active=False, version=version, updated_at=at)
    )


async def by_skus(session: AsyncSession, skus: Iterable[str]) -> dict[str, PricedProduct]:
    wanted = list(dict.fromkeys(skus))
    if not wanted:
        return {}
    rows = await session.execute(_BY_SKUS, {"skus": wanted})
    return {row.sku: PricedProduct(*row) for row in rows}
