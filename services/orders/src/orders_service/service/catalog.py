"""The catalog projection: what is for sale and at which price, as `catalog.events` say.

Each event carries the product document's version; an event older than what is applied is
ignored, so replays and reordering cannot bring back an old price.
"""

from __future__ import annotations

from contracts.events.catalog import PriceChanged, ProductDeactivated, ProductSnapshot
from sqlalchemy.ext.asyncio import AsyncSession

from orders_service.repository import products


async def apply_snapshot(*, session: AsyncSession, event: ProductSnapshot) -> None:
    await products.upsert_snapshot(
        session,
        product_id=event.product_id,
        sku=event.sku,
        name=event.name,
        price=event.price,
        currency=event.currency,
        is_active=event.is_active,
        version=event.version,
        at=event.occurred_at,
    )


async def apply_price_change(*, session: AsyncSession, event: PriceChanged) -> None:
    await products.apply_price(
        session,
        product_id=event.product_id,
        price=event.new_price,
        currency=event.currency,
        version=event.version,
        at=event.occurred_at,
    )


async def apply_deactivation(*, session: AsyncSession, event: ProductDeactivated) -> None:
    await products.deactivate(
        session, product_id=event.product_id, version=event.version, at=event.occurred_at
    )
