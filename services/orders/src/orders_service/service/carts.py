"""Carts: add, change, remove, coupons, and merging an anonymous cart into a user's.

Every change runs in one PostgreSQL transaction that raises the cart's version; the Redis copy
is replaced after the commit. Prices always come from the catalog projection, never the client.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from orders_service import errors
from orders_service.cache import EMPTY, CartCache, CartOwner, CartSnapshot
from orders_service.pricing import (
    CouponTerms,
    PricedCart,
    PricedProduct,
    coupon_problem,
    price_cart,
)
from orders_service.repository import carts, coupons, products
from orders_service.repository.carts import CartHead, PricedItems
from orders_service.schemas import CartItemPublic, CartPublic
from orders_service.session import Transaction


@dataclass(frozen=True, slots=True)
class CartRules:
    max_line_quantity: int
    max_cart_lines: int
    ttl_seconds: int


def _now() -> datetime:
    return datetime.now(UTC)


def present(priced: PricedCart) -> CartPublic:
    return CartPublic(
        items=[
            CartItemPublic(
                sku=line.sku,
                product_id=line.product.product_id if line.product else None,
                name=line.product.name if line.product else line.sku,
                quantity=line.quantity,
                unit_price=line.unit_price,
                line_total=line.line_total,
                available=line.available,
                currency=line.product.currency if line.product else None,
            )
            for line in priced.lines
        ],
        subtotal=priced.subtotal,
        discount=priced.discount,
        total=priced.total,
        currency=priced.currency,
        coupon_code=priced.coupon_code,
        coupon_problem=priced.coupon_problem,
        currency_problem=priced.currency_problem,
        item_count=sum(line.quantity for line in priced.lines),
    )


async def _price(session: AsyncSession, snapshot: CartSnapshot, now: datetime) -> PricedCart:
    known = await products.by_skus(session, (sku for sku, _ in snapshot.items))
    return await _price_with(session, snapshot, known, now)


async def _price_with(
    session: AsyncSession,
    snapshot: CartSnapshot,
    known: dict[str, PricedProduct],
    now: datetime,
) -> PricedCart:
    coupon = await coupons.terms(session, snapshot.coupon_code) if snapshot.coupon_code else None
    return price_cart(
        snapshot.items, known, coupon_code=snapshot.coupon_code, coupon=coupon, now=now
    )


async def _snapshot(
    session: AsyncSession, cache: CartCache, owner: CartOwner | None, now: datetime
) -> CartSnapshot:
    if owner is None:
        return EMPTY
    cached = await cache.get(owner)
    if cached is not None:
        return cached
    stored = await carts.load(session, owner, now=now)
    if stored is None:
        return EMPTY
    await cache.put(
        owner, stored.snapshot, ttl_seconds=int((stored.expires_at - now).total_seconds())
    )
    return stored.snapshot


async def view_cart(
    *, session: AsyncSession, cache: CartCache, owner: CartOwner | None
) -> CartPublic:
    now = _now()
    return present(await _price(session, await _snapshot(session, cache, owner, now), now))


async def _finish(
    tx: Transaction,
    cache: CartCache,
    owner: CartOwner,
    head: CartHead,
    now: datetime,
    *,
    coupon_code: str | None = None,
    keep_coupon: bool = True,
) -> PricedCart:
    """Read the changed cart back (lines and products in one query), price it, and replace
    the Redis copy once the transaction commits."""
    current = await carts.priced_items(tx.session, head.id)
    code = head.coupon_code if keep_coupon else coupon_code
    snapshot = CartSnapshot(head.version, current.items, code)
    priced = await _price_with(tx.session, snapshot, current.products, now)

    async def refresh_copy() -> None:
        await cache.put(owner, snapshot)

    tx.after_commit(refresh_copy)
    return priced


def _expiry(rules: CartRules, now: datetime) -> datetime:
    return now + timedelta(seconds=rules.ttl_seconds)


def _check_quantity(quantity: int, rules: CartRules) -> None:
    if quantity > rules.max_line_quantity:
        raise errors.QuantityLimitError(
            f"at most {rules.max_line_quantity} units of one item per order",
            limit=rules.max_line_quantity,
        )


async def add_item(
    *,
    tx: Transaction,
    cache: CartCache,
    owner: CartOwner,
    sku: str,
    quantity: int,
    rules: CartRules,
) -> CartPublic:
    now, session = _now(), tx.session
    _check_quantity(quantity, rules)
    head = await carts.touch(session, owner, now=now, expires_at=_expiry(rules, now))
    _check_quantity(
        await carts.add_item(session, cart_id=head.id, sku=sku, quantity=quantity, now=now), rules
    )
    priced = await _finish(tx, cache, owner, head, now)
    # Checked on the read-back (one query fewer); raising rolls the addition back.
    product = next(line.product for line in priced.lines if line.sku == sku)
    if product is None:
        raise errors.UnknownProductError(f"no product with sku {sku!r}")
    if not product.is_active:
        raise errors.ProductUnavailableError(f"{sku} is not for sale")
    _check_size(priced, rules)
    if _mixes_currencies(priced, {sku}):
        raise errors.CurrencyMismatchError(
            f"{sku} is priced in {product.currency}, the cart is not"
        )
    return present(priced)


async def set_quantity(
    *,
    tx: Transaction,
    cache: CartCache,
    owner: CartOwner,
    sku: str,
    quantity: int,
    rules: CartRules,
) -> CartPublic:
    now, session = _now(), tx.session
    _check_quantity(quantity, rules)
    head = await carts.touch(session, owner, now=now, expires_at=_expiry(rules, now))
    if not await carts.set_quantity(session, cart_id=head.id, sku=sku, quantity=quantity):
        raise errors.CartItemNotFoundError(f"{sku} is not in the cart")
    return present(await _finish(tx, cache, owner, head, now))


async def remove_item(
    *, tx: Transaction, cache: CartCache, owner: CartOwner, sku: str, rules: CartRules
) -> CartPublic:
    now, session = _now(), tx.session
    head = await carts.touch(session, owner, now=now, expires_at=_expiry(rules, now))
    if not await carts.remove_item(session, cart_id=head.id, sku=sku):
        raise errors.CartItemNotFoundError(f"{sku} is not in the cart")
    return present(await _finish(tx, cache, owner, head, now))


async def apply_coupon(
    *, tx: Transaction, cache: CartCache, owner: CartOwner, code: str, rules: CartRules
) -> CartPublic:
    now, session = _now(), tx.session
    code = code.upper()
    terms = await coupons.terms(session, code)
    if terms is None:
        raise errors.CouponInvalidError(f"no coupon {code}")
    head = await carts.touch(session, owner, now=now, expires_at=_expiry(rules, now))
    current = await carts.priced_items(session, head.id)
    problem = await _coupon_refusal(session, terms, current, user_id=owner.user_id, now=now)
    if problem is not None:
        raise errors.CouponInvalidError(problem)
    await carts.set_coupon(session, cart_id=head.id, code=code)
    return present(await _finish(tx, cache, owner, head, now, coupon_code=code, keep_coupon=False))


async def _coupon_refusal(
    session: AsyncSession,
    terms: CouponTerms,
    cart: PricedItems,
    *,
    user_id: str | None,
    now: datetime,
) -> str | None:
    """Why the coupon cannot be put on this cart now, for this user if one is known; None if
    it can."""
    priced = price_cart(cart.items, cart.products, coupon_code=None, coupon=None, now=now)
    problem = coupon_problem(terms, subtotal=priced.subtotal, currency=priced.currency, now=now)
    if problem is not None:
        return problem
    if user_id is not None and terms.max_uses_per_user is not None:
        held = await coupons.held_by_user(session, coupon_id=terms.id, user_id=user_id)
        if held >= terms.max_uses_per_user:
            return "you have used this coupon as often as it allows"
    return None


async def remove_coupon(
    *, tx: Transaction, cache: CartCache, owner: CartOwner, rules: CartRules
) -> CartPublic:
    now, session = _now(), tx.session
    head = await carts.touch(session, owner, now=now, expires_at=_expiry(rules, now))
    await carts.set_coupon(session, cart_id=head.id, code=None)
    return present(await _finish(tx, cache, owner, head, now, coupon_code=None, keep_coupon=False))


async def merge(
    *, tx: Transaction, cache: CartCache, user_id: str, token: str, rules: CartRules
) -> CartPublic:
    """Move an anonymous cart into the user's (called by the client right after login).

    Quantities of the same item add up to the per-line limit; a merge that would hold more
    different items than a cart may, or items in two currencies (as an addition would), is
    refused (409), and both carts stay as they were. The user's coupon wins; the anonymous
    cart's comes along only if the user could apply it to the merged cart now."""
    now, session = _now(), tx.session
    anonymous = CartOwner.of_token(token)
    assert anonymous.anonymous_key is not None
    source = await carts.lock_anonymous(session, anonymous.anonymous_key, now=now)
    if source is None:
        raise errors.CartNotFoundError(
            "no anonymous cart with this id (merged already, or expired)"
        )
    owner = CartOwner.of_user(user_id)
    head = await carts.touch(session, owner, now=now, expires_at=_expiry(rules, now))
    moved = await carts.merge_items(
        session, source_id=source.id, target_id=head.id, max_quantity=rules.max_line_quantity
    )
    coupon_code = head.coupon_code
    if coupon_code is None and source.coupon_code is not None:
        # It was checked for nobody in particular, maybe long ago: shown as applied, a coupon
        # the user has used up, or one expired or withdrawn since, would only fail checkout.
        terms = await coupons.terms(session, source.coupon_code)
        if terms is not None:
            merged_items = await carts.priced_items(session, head.id)
            refusal = await _coupon_refusal(session, terms, merged_items, user_id=user_id, now=now)
            if refusal is None:
                coupon_code = source.coupon_code
    if coupon_code != head.coupon_code:
        await carts.set_coupon(session, cart_id=head.id, code=coupon_code)
    await carts.delete_cart(session, source.id)
    tombstone = CartSnapshot(source.version + 1, (), None)

    async def forget_anonymous_copy() -> None:
        await cache.put(anonymous, tombstone)

    tx.after_commit(forget_anonymous_copy)
    merged = await _finish(tx, cache, owner, head, now, coupon_code=coupon_code, keep_coupon=False)
    # Raising leaves both carts as they were.
    _check_size(merged, rules)
    if _mixes_currencies(merged, moved):
        currencies = " and ".join(
            sorted({line.product.currency for line in merged.lines if line.product})
        )
        raise errors.CurrencyMismatchError(
            f"the carts' items are priced in {currencies}: a cart holds one currency"
        )
    return present(merged)


def _check_size(cart: PricedCart, rules: CartRules) -> None:
    if len(cart.lines) > rules.max_cart_lines:
        raise errors.CartFullError(f"a cart holds at most {rules.max_cart_lines} different items")


def _mixes_currencies(cart: PricedCart, incoming: Collection[str]) -> bool:
    """True when an item just put in the cart (`incoming` skus) is priced in another currency
    than some item of the cart: the change must be refused. Unknown skus have no price."""
    priced = [(line.sku, line.product.currency) for line in cart.lines if line.product]
    added = {currency for sku, currency in priced if sku in incoming}
    return bool(added) and len(added | {currency for _, currency in priced}) > 1
