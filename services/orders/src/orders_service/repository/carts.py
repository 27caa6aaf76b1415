"""Carts and their items in PostgreSQL (the source of truth behind the Redis copy)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ColumnClause,
    ColumnElement,
    case,
    delete,
    func,
    literal,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import new_id
from orders_service.cache import CartOwner, CartSnapshot
from orders_service.models import Cart, CartItem, Product, Uuid
from orders_service.pricing import PricedProduct

# Versions come from the clock (microseconds), so a cart deleted on expiry and created again
# still outranks every copy of its former self that Redis may hold.
_CLOCK: ColumnClause[int] = literal_column(
    "(extract(epoch from clock_timestamp()) * 1000000)::bigint", type_=BigInteger
)


@dataclass(frozen=True, slots=True)
class CartHead:
    id: str
    version: int
    coupon_code: str | None


@dataclass(frozen=True, slots=True)
class StoredCart:
    snapshot: CartSnapshot
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class CheckoutCart:
    head: CartHead
    lines: tuple[tuple[str, int, PricedProduct | None], ...]
    """(sku, quantity, product) in the order the items were added."""


def _owned_by(owner: CartOwner) -> ColumnElement[bool]:
    if owner.user_id is not None:
        return Cart.user_id == owner.user_id
    return Cart.anonymous_key == owner.anonymous_key


async def touch(
    session: AsyncSession, owner: CartOwner, *, now: datetime, expires_at: datetime
) -> CartHead:
    """Get or create the owner's cart for a change: locks it, raises its version, renews its
    expiry, and empties it first if it had already expired."""
    expired_items = (
        delete(CartItem)
        .where(CartItem.cart_id == Cart.id, _owned_by(owner), Cart.expires_at <= now)
        .cte("expired_items")
    )
    new_cart = insert(Cart).values(
        id=new_id(),
        user_id=owner.user_id,
        anonymous_key=owner.anonymous_key,
        version=_CLOCK,
        created_at=now,
        updated_at=now,
        expires_at=expires_at,
    )
    statement = new_cart.on_conflict_do_update(
        index_elements=[Cart.user_id if owner.user_id is not None else Cart.anonymous_key],
        set_={
            "version": func.greatest(Cart.version + 1, _CLOCK),
            "updated_at": now,
            "expires_at": expires_at,
            "coupon_code": case((Cart.expires_at <= now, None), else_=Cart.coupon_code),
        },
    ).returning(Cart.id, Cart.version, Cart.coupon_code)
    row = (await session.execute(statement.add_cte(expired_items))).one()
    return CartHead(row.id, row.version, row.coupon_code)


async def add_item(
    session: AsyncSession, *, cart_id: str, sku: str, quantity: int, now: datetime
) -> int:
    """Add `quantity` units of `sku`; returns the line's new quantity."""
    new_item = insert(CartItem).values(cart_id=cart_id, sku=sku, quantity=quantity, added_at=now)
    statement = new_item.on_conflict_do_update(
        index_elements=[CartItem.cart_id, CartItem.sku],
        set_={"quantity": CartItem.quantity + new_item.excluded.quantity},
    ).returning(CartItem.quantity)
    return int((await session.execute(statement)).scalar_one())


async def set_quantity(session: AsyncSession, *, cart_id: str, sku: str, quantity: int) -> bool:
    result = await session.execute(
        update(CartItem)
        .where(CartItem.cart_id == cart_id, CartItem.sku == sku)
        .values(quantity=quantity)
        .returning(CartItem.sku)
    )
    return result.first() is not None


async def remove_item(session: AsyncSession, *, cart_id: str, sku: str) -> bool:
    result = await session.execute(
        delete(CartItem)
        .where(CartItem.cart_id == cart_id, CartItem.sku == sku)
        .returning(CartItem.sku)
    )
    return result.first() is not None


async def set_coupon(session: AsyncSession, *, cart_id: str, code: str | None) -> None:
    await session.execute(update(Cart).where(Cart.id == cart_id).values(coupon_code=code))


async def items(session: AsyncSession, cart_id: str) -> tuple[tuple[str, int], ...]:
    rows = await session.execute(
        select(CartItem.sku, CartItem.quantity)
        .where(CartItem.cart_id == cart_id)
        .order_by(CartItem.added_at, CartItem.sku)
    )
    return tuple((row.sku, row.quantity) for row in rows)


async def load(session: AsyncSession, owner: CartOwner, *, now: datetime) -> StoredCart | None:
    """The owner's unexpired cart with its items, in one query."""
    rows = (
        await session.execute(
            select(Cart.version, Cart.coupon_code, Cart.expires_at, CartItem.sku, CartItem.quantity)
            .outerjoin(CartItem, CartItem.cart_id == Cart.id)
            .where(_owned_by(owner), Cart.expires_at > now)
            .order_by(CartItem.added_at, CartItem.sku)
        )
    ).all()
    if not rows:
        return None
    first = rows[0]
    lines = tuple((row.sku, row.quantity) for row in rows if row.sku is not None)
    return StoredCart(CartSnapshot(first.version, lines, first.coupon_code), first.expires_at)


async def lock_for_checkout(
    session: AsyncSession, user_id: str, *, now: datetime
) -> CheckoutCart | None:
    """The user's cart with each item's product, locked until the transaction ends, so two
    checkouts of one cart run one after the other."""
    rows = (
        await session.execute(
            select(
                Cart.id,
                Cart.version,
                Cart.coupon_code,
                CartItem.sku,
                CartItem.quantity,
                Product.product_id,
                Product.sku.label("product_sku"),
                Product.name,
                Product.price,
                Product.currency,
                Product.is_active,
            )
            .outerjoin(CartItem, CartItem.cart_id == Cart.id)
            .outerjoin(Product, Product.sku == CartItem.sku)
            .where(Cart.user_id == user_id, Cart.expires_at > now)
            .order_by(CartItem.added_at, CartItem.sku)
            .with_for_update(of=Cart)
        )
    ).all()
    if not rows:
        return None
    first = rows[0]
    lines = tuple(
        (
            row.sku,
            row.quantity,
            PricedProduct(
                row.product_id, row.product_sku, row.name, row.price, row.currency, row.is_active
            )
            if row.product_id is not None
            else None,
        )
        for row in rows
        if row.sku is not None
    )
    return CheckoutCart(CartHead(first.id, first.version, first.coupon_code), lines)


async def clear(session: AsyncSession, cart_id: str) -> int:
    """Empty the cart and drop its coupon; returns the new version."""
    emptied = delete(CartItem).where(CartItem.cart_id == cart_id).cte("emptied")
    statement = (
        update(Cart)
        .where(Cart.id == cart_id)
        .values(coupon_code=None, version=func.greatest(Cart.version + 1, _CLOCK))
        .returning(Cart.version)
        .add_cte(emptied)
    )
    return int((await session.execute(statement)).scalar_one())


async def lock_anonymous(
    session: AsyncSession, anonymous_key: str, *, now: datetime
) -> CartHead | None:
    row = (
        await session.execute(
            select(Cart.id, Cart.version, Cart.coupon_code)
            .where(Cart.anonymous_key == anonymous_key, Cart.expires_at > now)
            .with_for_update()
        )
    ).first()
    return CartHead(row.id, row.version, row.coupon_code) if row is not None else None


async def merge_items(
    session: AsyncSession, *, source_id: str, target_id: str, max_quantity: int
) -> None:
    """Move the source cart's items into the target, adding up quantities of the same sku."""
    moved = select(
        literal(target_id, Uuid), CartItem.sku, CartItem.quantity, CartItem.added_at
    ).where(CartItem.cart_id == source_id)
    statement = insert(CartItem).from_select(["cart_id", "sku", "quantity", "added_at"], moved)
    statement = statement.on_conflict_do_update(
        index_elements=[CartItem.cart_id, CartItem.sku],
        set_={
            "quantity": func.least(CartItem.quantity + statement.excluded.quantity, max_quantity)
        },
    )
    await session.execute(statement)


async def delete_cart(session: AsyncSession, cart_id: str) -> None:
    await session.execute(delete(Cart).where(Cart.id == cart_id))


async def purge_expired(session: AsyncSession, *, now: datetime, limit: int = 1000) -> int:
    doomed = (
        select(Cart.id).where(Cart.expires_at <= now).limit(limit).with_for_update(skip_locked=True)
    )
    result = await session.execute(
        delete(Cart).where(Cart.id.in_(doomed.scalar_subquery())).returning(Cart.id)
    )
    return len(result.all())
