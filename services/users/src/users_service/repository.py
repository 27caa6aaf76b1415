"""Every query of the users service."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from users_service.models import Address, CatalogProduct, Profile, WishlistItem


async def insert_profile_if_new(session: AsyncSession, values: dict[str, object]) -> bool:
    statement = (
        insert(Profile)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[Profile.user_id])
        .returning(Profile.user_id)
    )
    return (await session.execute(statement)).scalar_one_or_none() is not None


async def profile(
    session: AsyncSession, user_id: str, *, for_update: bool = False
) -> Profile | None:
    return await session.get(Profile, user_id, with_for_update=for_update)


async def cpf_owner(session: AsyncSession, cpf: str) -> str | None:
    owner = await session.scalar(select(Profile.user_id).where(Profile.cpf == cpf))
    return str(owner) if owner is not None else None


async def addresses(session: AsyncSession, user_id: str) -> list[Address]:
    rows = await session.scalars(
        select(Address)
        .where(Address.user_id == user_id)
        .order_by(Address.is_default.desc(), Address.created_at)
    )
    return list(rows)


async def address(session: AsyncSession, user_id: str, address_id: str) -> Address | None:
    """The address if it belongs to `user_id`: the owner is part of the lookup (no BOLA)."""
    return await session.scalar(
        select(Address).where(Address.id == address_id, Address.user_id == user_id)
    )


async def count_addresses(session: AsyncSession, user_id: str) -> int:
    return int(
        await session.scalar(
            select(func.count()).select_from(Address).where(Address.user_id == user_id)
        )
        or 0
    )


async def clear_default(session: AsyncSession, user_id: str) -> None:
    await session.execute(
        update(Address)
        .where(Address.user_id == user_id, Address.is_default)
        .values(is_default=False)
    )
    await session.flush()


async def newest_address(session: AsyncSession, user_id: str) -> Address | None:
    return await session.scalar(
        select(Address)
        .where(Address.user_id == user_id)
        .order_by(Address.created_at.desc())
        .limit(1)
    )


async def delete_all_of(session: AsyncSession, user_id: str) -> None:
    await session.execute(delete(Address).where(Address.user_id == user_id))
    await session.execute(delete(WishlistItem).where(WishlistItem.user_id == user_id))


async def upsert_product(session: AsyncSession, values: dict[str, object], version: int) -> None:
    """Apply a catalog snapshot unless the same or a newer version is already projected."""
    statement = (
        insert(CatalogProduct)
        .values(**values, version=version)
        .on_conflict_do_update(
            index_elements=[CatalogProduct.product_id],
            set_={**{k: v for k, v in values.items() if k != "product_id"}, "version": version},
            where=CatalogProduct.version < version,
        )
    )
    await session.execute(statement)


async def deactivate_product(session: AsyncSession, product_id: str, version: int) -> None:
    await session.execute(
        update(CatalogProduct)
        .where(CatalogProduct.product_id == product_id, CatalogProduct.version < version)
        .values(is_active=False, version=version)
    )


async def product(session: AsyncSession, product_id: str) -> CatalogProduct | None:
    return await session.get(CatalogProduct, product_id)


async def add_wish(session: AsyncSession, user_id: str, product_id: str) -> None:
    await session.execute(
        insert(WishlistItem).values(user_id=user_id, product_id=product_id).on_conflict_do_nothing()
    )


async def remove_wish(session: AsyncSession, user_id: str, product_id: str) -> bool:
    result = await session.execute(
        delete(WishlistItem)
        .where(WishlistItem.user_id == user_id, WishlistItem.product_id == product_id)
        .returning(WishlistItem.product_id)
    )
    return result.scalar_one_or_none() is not None


async def count_wishes(session: AsyncSession, user_id: str) -> int:
    return int(
        await session.scalar(
            select(func.count()).select_from(WishlistItem).where(WishlistItem.user_id == user_id)
        )
        or 0
    )


async def wishlist(
    session: AsyncSession, user_id: str
) -> Sequence[tuple[WishlistItem, CatalogProduct]]:
    rows = await session.execute(
        select(WishlistItem, CatalogProduct)
        .join(CatalogProduct, CatalogProduct.product_id == WishlistItem.product_id)
        .where(WishlistItem.user_id == user_id)
        .order_by(WishlistItem.added_at.desc())
    )
    return [(item, product) for item, product in rows]
