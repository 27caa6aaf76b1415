"""/api/cart: the caller's cart (signed in, or anonymous through `X-Cart-Id`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header
from shopkit.db import ReadSessionDep
from shopkit.params import Sku
from shopkit.problems import responses
from shopkit.security import CurrentUser, InvalidTokenError

from orders_service import errors
from orders_service.deps import (
    CART_ID_HEADER,
    CART_ID_PATTERN,
    CartCacheDep,
    CartOwnerDep,
    CartRulesDep,
    ChangingCartOwnerDep,
)
from orders_service.schemas import CartItemAdd, CartItemUpdate, CartPublic, CouponApply
from orders_service.service import carts
from orders_service.session import TransactionDep

router = APIRouter(prefix="/api/cart", tags=["cart"])

SkuPath = Sku
CHANGE_ERRORS = (
    errors.ProductUnavailableError,  # 409, like the quantity, cart-size and currency rules
    errors.UnknownProductError,
    InvalidTokenError,
)


@router.get("", response_model=CartPublic, responses=responses(InvalidTokenError))
async def get_cart(
    *, session: ReadSessionDep, cache: CartCacheDep, owner: CartOwnerDep
) -> CartPublic:
    """The cart with current catalog prices; an unknown or missing cart is an empty one."""
    return await carts.view_cart(session=session, cache=cache, owner=owner)


@router.post(
    "/items",
    response_model=CartPublic,
    responses=responses(*CHANGE_ERRORS),
)
async def add_item(
    *,
    body: CartItemAdd,
    tx: TransactionDep,
    cache: CartCacheDep,
    owner: ChangingCartOwnerDep,
    rules: CartRulesDep,
) -> CartPublic:
    """Add units of a product (to the line already holding it, if any). Without a token or
    `X-Cart-Id`, a new anonymous cart is made and its id returned in `X-Cart-Id`."""
    return await carts.add_item(
        tx=tx, cache=cache, owner=owner, sku=body.sku, quantity=body.quantity, rules=rules
    )


@router.patch(
    "/items/{sku}",
    response_model=CartPublic,
    responses=responses(errors.CartItemNotFoundError, errors.QuantityLimitError, InvalidTokenError),
)
async def set_quantity(
    *,
    sku: SkuPath,
    body: CartItemUpdate,
    tx: TransactionDep,
    cache: CartCacheDep,
    owner: ChangingCartOwnerDep,
    rules: CartRulesDep,
) -> CartPublic:
    return await carts.set_quantity(
        tx=tx, cache=cache, owner=owner, sku=sku, quantity=body.quantity, rules=rules
    )


@router.delete(
    "/items/{sku}", response_model=CartPublic, responses=responses(errors.CartItemNotFoundError)
)
async def remove_item(
    *,
    sku: SkuPath,
    tx: TransactionDep,
    cache: CartCacheDep,
    owner: ChangingCartOwnerDep,
    rules: CartRulesDep,
) -> CartPublic:
    return await carts.remove_item(tx=tx, cache=cache, owner=owner, sku=sku, rules=rules)


@router.post(
    "/coupon",
    response_model=CartPublic,
    responses=responses(errors.CouponInvalidError, InvalidTokenError),
)
async def apply_coupon(
    *,
    body: CouponApply,
    tx: TransactionDep,
    cache: CartCacheDep,
    owner: ChangingCartOwnerDep,
    rules: CartRulesDep,
) -> CartPublic:
    """Attach a coupon; refused (409) when it is unknown or cannot discount this cart now."""
    return await carts.apply_coupon(tx=tx, cache=cache, owner=owner, code=body.code, rules=rules)


@router.delete("/coupon", response_model=CartPublic)
async def remove_coupon(
    *, tx: TransactionDep, cache: CartCacheDep, owner: ChangingCartOwnerDep, rules: CartRulesDep
) -> CartPublic:
    return await carts.remove_coupon(tx=tx, cache=cache, owner=owner, rules=rules)


@router.post(
    "/merge",
    response_model=CartPublic,
    responses=responses(
        errors.CartNotFoundError,
        errors.CartFullError,  # 409, like the currency rule (`currency-mismatch`)
        InvalidTokenError,
    ),
)
async def merge_cart(
    *,
    user: CurrentUser,
    tx: TransactionDep,
    cache: CartCacheDep,
    rules: CartRulesDep,
    token: Annotated[str, Header(alias=CART_ID_HEADER, pattern=CART_ID_PATTERN)],
) -> CartPublic:
    """Right after login: move the anonymous cart named by `X-Cart-Id` into the user's cart
    (quantities of the same item add up; the user's coupon wins). The anonymous cart is gone
    afterwards. Like an addition, a merge beyond the cart's size (`cart-full`) or into a cart
    priced in another currency (`currency-mismatch`) is a 409 that changes neither cart."""
    return await carts.merge(tx=tx, cache=cache, user_id=user.user_id, token=token, rules=rules)
