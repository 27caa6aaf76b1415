"""Data export (LGPD art. 18 / GDPR art. 15): what orders holds about one user."""

from __future__ import annotations

from shopkit.security import Principal
from sqlalchemy.ext.asyncio import AsyncSession

from orders_service.cache import CartCache, CartOwner
from orders_service.repository import coupons, orders
from orders_service.schemas import OrdersExport
from orders_service.service.carts import view_cart


async def export(*, session: AsyncSession, cache: CartCache, principal: Principal) -> OrdersExport:
    """The caller's orders, cart and coupon uses; a user with none gets empty lists."""
    placed = await orders.details_of_user(session, principal.user_id)
    for order in placed:
        # A 3-D Secure client secret completes a payment: it has no place in a document kept.
        order.payment.next_action = None
    return OrdersExport(
        user_id=principal.user_id,
        orders=placed,
        cart=await view_cart(
            session=session, cache=cache, owner=CartOwner.of_user(principal.user_id)
        ),
        coupon_redemptions=await coupons.redemptions_of_user(session, principal.user_id),
    )
