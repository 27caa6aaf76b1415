"""The checkout write: order, lines, first history row, emptied cart and the idempotency record,
in one statement (one round trip) inside the checkout transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import new_id
from orders_service.repository.carts import CartHead

# The checkout's first statement takes its two locks: the Idempotency-Key (a concurrent request
# with the same key waits here for this one's outcome) and the user's cart row (a concurrent
# checkout or cart change waits until this transaction ends). The cart's items are read by the
# next statement, whose snapshot is taken after both waits: a lock taken inside a join would
# return the locked row's newest version joined with items from before the wait.
_BEGIN = text("""
WITH claim AS (
    INSERT INTO idempotency_keys (user_id, key, request_hash)
    VALUES (:user_id, :idempotency_key, :request_hash)
    ON CONFLICT DO NOTHING
    RETURNING key
), cart AS (
    SELECT id, version, coupon_code FROM carts
    WHERE user_id = :user_id AND expires_at > :now
    FOR UPDATE
)
SELECT (SELECT count(*) FROM claim) AS claimed, cart.id, cart.version, cart.coupon_code
FROM (SELECT 1) AS one LEFT JOIN cart ON true
""")

# Data-modifying CTEs run as one statement: foreign keys are checked at its end, when the order
# row exists, and either everything is written or nothing.
_PLACE = text("""
WITH new_order AS (
    INSERT INTO orders (id, user_id, status, currency, subtotal, discount, shipping, total,
                        coupon_code, shipping_address, shipping_choice, payment_method_id,
                        customer_ip, payment_status, created_at, updated_at, status_changed_at)
    VALUES (:order_id, :user_id, 'PENDING', :currency, :subtotal, :discount, :shipping, :total,
            :coupon_code, :shipping_address, :shipping_choice, :payment_method_id,
            :customer_ip, 'pending', :now, :now, :now)
), new_lines AS (
    INSERT INTO order_lines (order_id, line_no, sku, product_id, name, quantity, unit_price,
                             line_total)
    SELECT :order_id, line.line_no, line.sku, line.product_id, line.name, line.quantity,
           line.unit_price, line.line_total
    FROM jsonb_to_recordset(:lines) AS line(line_no int, sku text, product_id uuid, name text,
                                            quantity int, unit_price bigint, line_total bigint)
), first_status AS (
    INSERT INTO order_status_history (id, order_id, from_status, to_status, reason, actor, at)
    VALUES (:history_id, :order_id, NULL, 'PENDING', 'placed', :user_id, :now)
), recorded_response AS (
    UPDATE idempotency_keys SET order_id = :order_id, response = :response
    WHERE user_id = :user_id AND key = :idempotency_key
), emptied_items AS (
    DELETE FROM cart_items WHERE cart_id = :cart_id
)
UPDATE carts
SET coupon_code = NULL,
    version = greatest(version + 1, (extract(epoch from clock_timestamp()) * 1000000)::bigint)
WHERE id = :cart_id
RETURNING version
""").bindparams(
    bindparam("shipping_address", type_=JSONB),
    bindparam("shipping_choice", type_=JSONB),
    bindparam("lines", type_=JSONB),
    bindparam("response", type_=JSONB),
)


@dataclass(frozen=True, slots=True)
class CheckoutStart:
    claimed: bool
    """False when another request holds the Idempotency-Key."""
    cart: CartHead | None
    """The user's cart, locked; None when there is none (or it expired)."""


async def begin(
    session: AsyncSession, *, user_id: str, idempotency_key: str, request_hash: str, now: datetime
) -> CheckoutStart:
    row = (
        await session.execute(
            _BEGIN,
            {
                "user_id": user_id,
                "idempotency_key": idempotency_key,
                "request_hash": request_hash,
                "now": now,
            },
        )
    ).one()
    cart = CartHead(row.id, row.version, row.coupon_code) if row.id is not None else None
    return CheckoutStart(claimed=row.claimed == 1, cart=cart)


@dataclass(frozen=True, slots=True)
class NewOrder:
    order_id: str
    user_id: str
    currency: str
    subtotal: int
    discount: int
    shipping: int
    total: int
    coupon_code: str | None
    shipping_address: dict[str, Any]
    shipping_choice: dict[str, Any]
    payment_method_id: str
    customer_ip: str | None
    lines: list[dict[str, Any]]
    """sku, product_id, name, quantity, unit_price, line_total"""
    placed_at: datetime


async def place(
    session: AsyncSession,
    order: NewOrder,
    *,
    cart_id: str,
    idempotency_key: str,
    response: dict[str, Any],
) -> int:
    """Write the order and empty its cart; returns the cart's new version."""
    result = await session.execute(
        _PLACE,
        {
            "order_id": order.order_id,
            "user_id": order.user_id,
            "currency": order.currency,
            "subtotal": order.subtotal,
            "discount": order.discount,
            "shipping": order.shipping,
            "total": order.total,
            "coupon_code": order.coupon_code,
            "shipping_address": order.shipping_address,
            "shipping_choice": order.shipping_choice,
            "payment_method_id": order.payment_method_id,
            "customer_ip": order.customer_ip,
            "now": order.placed_at,
            "lines": [{"line_no": n, **line} for n, line in enumerate(order.lines, start=1)],
            "history_id": new_id(),
            "idempotency_key": idempotency_key,
            "response": response,
            "cart_id": cart_id,
        },
    )
    return int(result.scalar_one())
