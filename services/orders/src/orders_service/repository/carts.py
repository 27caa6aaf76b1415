"""Carts and their items in PostgreSQL (the source of truth behind the Redis copy)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shopkit.db import table_of
from sqlalchemy import (
    BigInteger,
    ColumnClause,
    ColumnElement,
    DateTime,
    Insert,
    RowMapping,
    bindparam,
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

_carts = table_of(Cart)
_items = table_of(CartItem)
_products = table_of(Product)

# Versions come from the clock (microseconds), so a cart deleted on expiry and created again
# still outranks every copy of its former self that Redis may hold.
_CLOCK: ColumnClause[int] = literal_column(
    "(extract(epoch from clock_timestamp()) * 1000000)::bigint", type_=BigInteger
)

_PRODUCT_COLUMNS = (
    _products.c.product_id,
    _products.c.sku.label("product_sku"),
    _products.c.name,
    _products.c.price,
    _products.c.currency,
    _products.c.is_active,
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
class PricedItems:
    """A cart's (sku, quantity) lines, in the order added, with the products they name."""

    items: tuple[tuple[str, int], ...]
    products: dict[str, PricedProduct]


def _owned_by(owner: CartOwner) -> ColumnElement[bool]:
    if owner.user_id is not None:
        return _carts.c.user_id == owner.user_id
    return _carts.c.anonymous_key == owner.anonymous_key


def _product(mapping: RowMapping) -> PricedProduct | None:
    if mapping["product_id"] is None:
        return None
    return PricedProduct(
        product_id=mapping["product_id"],
        sku=mapping["product_sku"],
        name=mapping["name"],
        price=mapping["price"],
        currency=mapping["currency"],
        is_active=mapping["is_active"],
    )


def _touch_statement(*, by_user: bool) -> Insert:
    """Get or create a cart, renewed and emptied first if it had expired (see `touch`)."""
    now = bindparam("now", type_=DateTime(timezone=True))
    expires_at = bindparam("expires_at", type_=DateTime(timezone=True))
    owner_column = _carts.c.user_id if by_user else _carts.c.anonymous_key
    owner = bindparam("user_id" if by_user else "anonymous_key", type_=owner_column.type)
    expired_items = (
        delete(_items)
        .where(_items.c.cart_id == _carts.c.id, owner_column == owner, _carts.c.expires_at <= now)
        .cte("expired_items")
    )
    new_cart = insert(_carts).values(
        id=bindparam("cart_id"),
        user_id=bindparam("user_id"),
        anonymous_key=bindparam("anonymous_key"),
        version=_CLOCK,
        created_at=now,
        updated_at=now,
        expires_at=expires_at,
    )
    return (
        new_cart.on_conflict_do_update(
            index_elements=[owner_column],
            set_={
                "version": func.greatest(_carts.c.version + 1, _CLOCK),
                "updated_at": now,
                "expires_at": expires_at,
                "coupon_code": case((_carts.c.expires_at <= now, None), else_=_carts.c.coupon_code),
            },
        )
        .returning(_carts.c.id, _carts.c.version, _carts.c.coupon_code)
        .add_cte(expired_items)
    )


# Every cart change and checkout runs these: built once, with bound parameters (building one
# costs about as much CPU as sending it).
_TOUCH_USER_CART = _touch_statement(by_user=True)
_TOUCH_ANONYMOUS_CART = _touch_statement(by_user=False)
_new_item = insert(_items).values(
    cart_id=bindparam("cart_id"),
    sku=bindparam("sku"),
    quantity=bindparam("quantity"),
    added_at=bindparam("added_at"),
)
_ADD_ITEM = _new_item.on_conflict_do_update(
    index_elements=[_items.c.cart_id, _items.c.sku],
    set_={"quantity": _items.c.quantity + _new_item.excluded.quantity},
).returning(_items.c.quantity)
_PRICED_ITEMS = (
    select(_items.c.sku, _items.c.quantity, *_PRODUCT_COLUMNS)
    .select_from(_items.outerjoin(_products, _products.c.sku == _items.c.sku))
    .where(_items.c.cart_id == bindparam("cart_id"))
    .order_by(_items.c.added_at, _items.c.sku)
)


async def touch(
    session: AsyncSession, owner: CartOwner, *, now: datetime, expires_at: datetime
) -> CartHead:
    """Get or create the owner's cart for a change: locks it, raises its version, renews its
    expiry, and empties it first if it had already expired. One round trip."""
    statement = _TOUCH_USER_CART if owner.user_id is not None else _TOUCH_ANONYMOUS_CART
    row = (
        await session.execute(
            statement,
            {
                "cart_id": new_id(),
                "user_id": owner.user_id,
                "anonymous_key": owner.anonymous_key,
                "now": now,
                "expires_at": expires_at,
            },
        )
    ).one()
    return CartHead(row.id, row.version, row.coupon_code)


async def add_item(
    session: AsyncSession, *, cart_id: str, sku: str, quantity: int, now: datetime
) -> int:
    """Add `quantity` units of `sku`; returns the line's new quantity."""
    result = await session.execute(
        _ADD_ITEM, {"cart_id": cart_id, "sku": sku, "quantity": quantity, "added_at": now}
    )
    return int(result.scalar_one())


async def set_quantity(session: AsyncSession, *, cart_id: str, sku: str, quantity: int) -> bool:
    result = await session.execute(
        update(_items)
        .where(_items.c.cart_id == cart_id, _items.c.sku == sku)
        .values(quantity=quantity)
        .returning(_items.c.sku)
    )
    return result.first() is not None


async def remove_item(session: AsyncSession, *, cart_id: str, sku: str) -> bool:
    result = await session.execute(
        delete(_items)
        .where(_items.c.cart_id == cart_id, _items.c.sku == sku)
        .returning(_items.c.sku)
    )
    return result.first() is not None


async def set_coupon(session: AsyncSession, *, cart_id: str, code: str | None) -> None:
    await session.execute(update(_carts).where(_carts.c.id == cart_id).values(coupon_code=code))


async def priced_items(session: AsyncSession, cart_id: str) -> PricedItems:
    """The cart's lines with their products, in one query."""
    rows = await session.execute(_PRICED_ITEMS, {"cart_id": cart_id})
    items: list[tuple[str, int]] = []
    products: dict[str, PricedProduct] = {}
    for row in rows:
        items.append((row.sku, row.quantity))
        product = _product(row._mapping)
        if product is not None:
            products[row.sku] = product
    return PricedItems(tuple(items), products)


async def load(session: AsyncSession, owner: CartOwner, *, now: datetime) -> StoredCart | None:
    """The owner's unexpired cart with its items, in one query."""
    rows = (
        await session.execute(
            select(
                _carts.c.version,
                _carts.c.coupon_code,
                _carts.c.expires_at,
                _items.c.sku,
                _items.c.quantity,
            )
            .select_from(_carts.outerjoin(_items, _items.c.cart_id == _carts.c.id))
            .where(_owned_by(owner), _carts.c.expires_at > now)
            .order_by(_items.c.added_at, _items.c.sku)
        )
    ).all()
    if not rows:
        return None
    first = rows[0]
    lines = tuple((row.sku, row.quantity) for row in rows if row.sku is not None)
    return StoredCart(CartSnapshot(first.version, lines, first.coupon_code), first.expires_at)


async def lock_anonymous(
    session: AsyncSession, anonymous_key: str, *, now: datetime
) -> CartHead | None:
    row = (
        await session.execute(
            select(_carts.c.id, _carts.c.version, _carts.c.coupon_code)
            .where(_carts.c.anonymous_key == anonymous_key, _carts.c.expires_at > now)
            .with_for_update()
        )
    ).first()
    return CartHead(row.id, row.version, row.coupon_code) if row is not None else None


async def merge_items(
    session: AsyncSession, *, source_id: str, target_id: str, max_quantity: int
) -> frozenset[str]:
    """Move the source cart's items into the target, adding up quantities of the same sku;
    returns the skus moved."""
    moved = select(
        literal(target_id, Uuid), _items.c.sku, _items.c.quantity, _items.c.added_at
    ).where(_items.c.cart_id == source_id)
    statement = insert(_items).from_select(["cart_id", "sku", "quantity", "added_at"], moved)
    statement = statement.on_conflict_do_update(
        index_elements=[_items.c.cart_id, _items.c.sku],
        set_={
            "quantity": func.least(_items.c.quantity + statement.excluded.quantity, max_quantity)
        },
    )
    result = await session.execute(statement.returning(_items.c.sku))
    return frozenset(result.scalars())


async def delete_cart(session: AsyncSession, cart_id: str) -> None:
    await session.execute(delete(_carts).where(_carts.c.id == cart_id))


async def purge_expired(session: AsyncSession, *, now: datetime, limit: int = 1000) -> int:
    doomed = (
        select(_carts.c.id)
        .where(_carts.c.expires_at <= now)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    result = await session.execute(
        delete(_carts).where(_carts.c.id.in_(doomed.scalar_subquery())).returning(_carts.c.id)
    )
    return len(result.all())
