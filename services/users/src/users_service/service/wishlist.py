"""Wishlists, checked against users' own projection of the catalog."""

from __future__ import annotations

from contracts.events.catalog import ProductCreated, ProductDeactivated, ProductUpdated
from sqlalchemy.ext.asyncio import AsyncSession

from users_service import repository
from users_service.config import UsersSettings
from users_service.errors import UnknownProductError, WishlistFullError
from users_service.schemas import WishlistItemPublic, WishlistList
from users_service.service.profiles import load


async def project(*, session: AsyncSession, event: ProductCreated | ProductUpdated) -> None:
    await repository.upsert_product(
        session,
        {
            "product_id": event.product_id,
            "sku": event.sku,
            "name": event.name,
            "slug": event.slug,
            "price": event.price,
            "currency": event.currency,
            "is_active": event.is_active,
        },
        event.version,
    )


async def deactivate(*, session: AsyncSession, event: ProductDeactivated) -> None:
    await repository.deactivate_product(session, event.product_id, event.version)


async def list_mine(*, session: AsyncSession, user_id: str) -> WishlistList:
    await load(session, user_id)
    return WishlistList(
        items=[
            WishlistItemPublic(
                product_id=product.product_id,
                sku=product.sku,
                name=product.name,
                slug=product.slug,
                price=product.price,
                currency=product.currency,
                is_active=product.is_active,
                added_at=item.added_at,
            )
            for item, product in await repository.wishlist(session, user_id)
        ]
    )


async def add(
    *, session: AsyncSession, settings: UsersSettings, user_id: str, product_id: str
) -> WishlistList:
    await load(session, user_id, for_update=True)
    product = await repository.product(session, product_id)
    if product is None or not product.is_active:
        raise UnknownProductError(f"product {product_id} is not in the catalog")
    if await repository.count_wishes(session, user_id) >= settings.max_wishlist_items:
        raise WishlistFullError(f"at most {settings.max_wishlist_items} products")
    await repository.add_wish(session, user_id, product_id)
    return await list_mine(session=session, user_id=user_id)


async def remove(*, session: AsyncSession, user_id: str, product_id: str) -> None:
    """Idempotent: removing what is not (or no longer) on the caller's list is fine."""
    await load(session, user_id)
    await repository.remove_wish(session, user_id, product_id)
