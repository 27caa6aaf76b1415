"""Request dependencies of the orders API: settings, the cart cache, whose cart, client IP."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Header, Request, Response
from pydantic import WithJsonSchema
from shopkit.forwarding import client_ip, forwarded_for, parse_networks
from shopkit.security import OptionalUser

from orders_service.cache import CartCache, CartOwner
from orders_service.changes import OrderChanges
from orders_service.config import OrdersSettings
from orders_service.service.carts import CartRules
from orders_service.service.checkout import CheckoutRules

CART_ID_HEADER = "X-Cart-Id"
CART_ID_PATTERN = r"^[A-Za-z0-9_-]{16,128}$"


async def get_settings(request: Request) -> OrdersSettings:
    settings: OrdersSettings = request.app.state.settings
    return settings


async def get_cart_cache(request: Request) -> CartCache:
    cache: CartCache = request.app.state.cart_cache
    return cache


async def get_order_changes(request: Request) -> OrderChanges:
    changes: OrderChanges = request.app.state.order_changes
    return changes


SettingsDep = Annotated[OrdersSettings, Depends(get_settings)]
OrderChangesDep = Annotated[OrderChanges, Depends(get_order_changes)]
CartCacheDep = Annotated[CartCache, Depends(get_cart_cache)]
CartToken = Annotated[
    str | None,
    Header(
        alias=CART_ID_HEADER,
        pattern=CART_ID_PATTERN,
        description="Anonymous cart id, as returned by the first POST /api/cart/items",
    ),
    WithJsonSchema({"type": "string", "pattern": CART_ID_PATTERN}),
]


async def cart_rules(settings: SettingsDep) -> CartRules:
    return CartRules(
        max_line_quantity=settings.max_line_quantity,
        max_cart_lines=settings.max_cart_lines,
        ttl_seconds=settings.cart_ttl_seconds,
    )


async def checkout_rules(settings: SettingsDep) -> CheckoutRules:
    return CheckoutRules(
        quote_secret=settings.quote_signing_secret.get_secret_value(),
        max_line_quantity=settings.max_line_quantity,
    )


CartRulesDep = Annotated[CartRules, Depends(cart_rules)]
CheckoutRulesDep = Annotated[CheckoutRules, Depends(checkout_rules)]


async def cart_owner(user: OptionalUser, token: CartToken = None) -> CartOwner | None:
    """The signed-in user's cart; otherwise the anonymous cart named by `X-Cart-Id`, if any."""
    if user is not None:
        return CartOwner.of_user(user.user_id)
    if token is not None:
        return CartOwner.of_token(token)
    return None


async def cart_owner_for_change(
    response: Response, owner: Annotated[CartOwner | None, Depends(cart_owner)]
) -> CartOwner:
    """Like `cart_owner`, but an anonymous visitor without a cart gets a new one, whose id is
    returned in the `X-Cart-Id` response header for the client to send from then on."""
    if owner is not None:
        return owner
    token = secrets.token_urlsafe(24)
    response.headers[CART_ID_HEADER] = token
    return CartOwner.of_token(token)


CartOwnerDep = Annotated[CartOwner | None, Depends(cart_owner)]
ChangingCartOwnerDep = Annotated[CartOwner, Depends(cart_owner_for_change)]


async def customer_ip(request: Request, settings: SettingsDep) -> str | None:
    """The customer's IP for payment risk checks, as far as trusted proxies (the gateway)
    vouch for it (`shopkit.forwarding`)."""
    peer = request.client.host if request.client else None
    if peer is None:
        return None
    trusted = parse_networks(settings.trusted_proxies)
    return client_ip(peer, forwarded_for(request.headers), trusted)


ClientIpDep = Annotated[str | None, Depends(customer_ip)]
