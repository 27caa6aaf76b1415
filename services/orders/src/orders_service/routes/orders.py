"""/api/orders: checkout, the caller's orders, cancellation, timeline; admin listings."""

from __future__ import annotations

from typing import Annotated, get_args

from contracts.events.orders import OrderStatus
from fastapi import APIRouter, Body, Header, Query, Response
from pydantic import WithJsonSchema
from shopkit.db import ReadSessionDep
from shopkit.erasure import AccountDeletedError
from shopkit.params import OptionalDateTime, OptionalUuid7, Uuid7
from shopkit.problems import ForbiddenError, responses
from shopkit.security import AdminUser, CurrentUser, InvalidTokenError

from orders_service import errors
from orders_service.deps import (
    CartCacheDep,
    CheckoutRulesDep,
    ClientIpDep,
    OrderChangesDep,
    SettingsDep,
)
from orders_service.jobs import stuck_thresholds
from orders_service.schemas import (
    Cursor,
    OrderCancel,
    OrderCreate,
    OrderList,
    OrderPublic,
    OrdersExport,
    StuckOrderList,
    TimelinePublic,
)
from orders_service.service import checkout, export, orders
from orders_service.session import TransactionDep

router = APIRouter(prefix="/api/orders", tags=["orders"])

Limit = Annotated[int, Query(ge=1, le=100)]
Statuses = Annotated[
    list[OrderStatus] | None,
    Query(),
    WithJsonSchema({"type": "array", "items": {"enum": list(get_args(OrderStatus))}}),
]


# Every 409 of checkout shares one entry of `responses=`: the slug tells them apart.
CHECKOUT_CONFLICTS = {
    **errors.PriceChangedError.response_doc(),
    "description": "The request conflicts with the cart, the catalog, the shipping quote or the "
    "coupon as they are now (`empty-cart`, `product-unavailable`, `currency-mismatch`, "
    "`expired-shipping-quote`, `shipping-quote-mismatch`, `coupon-invalid`, ...), or "
    "`price-changed`: `expected_total` is not the total computed now, whose `subtotal`, "
    "`discount`, `shipping`, `total` and `currency` the problem carries. Nothing is placed "
    "or used up, and the Idempotency-Key stays free.",
}


@router.post(
    "",
    status_code=202,
    response_model=OrderPublic,
    responses={
        **responses(
            InvalidTokenError,
            errors.InvalidQuoteError,  # 404: a quote id shipping never signed
            errors.IdempotencyKeyReusedError,  # 422
            AccountDeletedError,  # 403: the token outlived the account's deletion
        ),
        errors.PriceChangedError.status: CHECKOUT_CONFLICTS,
    },
)
async def place_order(
    *,
    body: OrderCreate,
    user: CurrentUser,
    tx: TransactionDep,
    cache: CartCacheDep,
    rules: CheckoutRulesDep,
    customer_ip: ClientIpDep,
    response: Response,
    idempotency_key: Annotated[
        str,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            description="Retrying with the same key and body returns the same order.",
        ),
    ],
) -> OrderPublic:
    """Check out the caller's cart: the order is stored PENDING and the saga starts; follow it
    at `Location`. Send `expected_total` to be charged only the total the customer saw."""
    order = await checkout.place_order(
        tx=tx,
        cache=cache,
        user_id=user.user_id,
        idempotency_key=idempotency_key,
        body=body,
        customer_ip=customer_ip,
        rules=rules,
    )
    response.headers["Location"] = f"/api/orders/{order.id}"
    return order


@router.get(
    "", response_model=OrderList, responses=responses(InvalidTokenError, errors.InvalidCursorError)
)
async def list_orders(
    *, session: ReadSessionDep, user: CurrentUser, limit: Limit = 20, cursor: Cursor = None
) -> OrderList:
    """The caller's orders, newest first."""
    return await orders.list_own_orders(session=session, viewer=user, limit=limit, cursor=cursor)


@router.get("/me/export", response_model=OrdersExport, responses=responses(InvalidTokenError))
async def export_my_data(
    *, session: ReadSessionDep, user: CurrentUser, cache: CartCacheDep
) -> OrdersExport:
    """Everything orders holds about the caller (used by the users service's export). Declared
    before `/{order_id}` routes, although `me/export` could not match them anyway."""
    return await export.export(session=session, cache=cache, principal=user)


@router.get(
    "/admin",
    response_model=OrderList,
    responses=responses(InvalidTokenError, ForbiddenError, errors.InvalidCursorError),
)
async def list_all_orders(
    *,
    session: ReadSessionDep,
    _: AdminUser,
    status: Statuses = None,
    user_id: OptionalUuid7 = None,
    created_from: OptionalDateTime = None,
    created_to: OptionalDateTime = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> OrderList:
    """Every order, newest first, filtered by status (repeatable), user and creation time."""
    return await orders.list_all_orders(
        session=session,
        limit=limit,
        cursor=cursor,
        statuses=status or [],
        user_id=user_id,
        created_from=created_from,
        created_to=created_to,
    )


@router.get(
    "/admin/stuck",
    response_model=StuckOrderList,
    responses=responses(InvalidTokenError, ForbiddenError, errors.InvalidCursorError),
)
async def list_stuck_orders(
    *,
    session: ReadSessionDep,
    _: AdminUser,
    settings: SettingsDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> StuckOrderList:
    """Orders whose saga has not moved for longer than their status allows (also exported as
    the `shop_orders_stuck` gauge), longest stuck first."""
    return await orders.stuck_orders(
        session=session, thresholds=stuck_thresholds(settings), limit=limit, cursor=cursor
    )


@router.get(
    "/{order_id}",
    response_model=OrderPublic,
    responses=responses(InvalidTokenError, errors.OrderNotFoundError),
)
async def get_order(
    *,
    order_id: Uuid7,
    session: ReadSessionDep,
    user: CurrentUser,
    changes: OrderChangesDep,
    settings: SettingsDep,
    wait_while: Statuses = None,
    wait_seconds: Annotated[float, Query(ge=0, le=60)] = 0,
) -> OrderPublic:
    """One of the caller's orders with its history and, while AWAITING_PAYMENT, the payment's
    next action. With `wait_while=PENDING&wait_seconds=8` the answer waits (at most
    `wait_seconds`, capped by the service) until the status is no longer one of `wait_while`:
    follow a checkout without polling."""
    return await orders.await_order(
        session=session,
        changes=changes,
        order_id=order_id,
        viewer=user,
        wait_while=frozenset(wait_while or ()),
        wait_seconds=min(wait_seconds, settings.max_order_wait_seconds),
    )


@router.post(
    "/{order_id}/cancel",
    response_model=OrderPublic,
    responses={
        202: {
            "model": OrderPublic,
            "description": "A CONFIRMED order: the cancellation is requested (`cancellation`) "
            "and the order stays CONFIRMED until shipping stops the parcel (CANCELLED) or "
            "reports it gone (SHIPPED, the request `refused`)",
        },
        **responses(InvalidTokenError, errors.OrderNotFoundError, errors.InvalidTransitionError),
    },
)
async def cancel_order(
    *,
    order_id: Uuid7,
    tx: TransactionDep,
    user: CurrentUser,
    response: Response,
    body: Annotated[OrderCancel | None, Body()] = None,
) -> OrderPublic:
    """Cancel before dispatch. An order not yet confirmed is CANCELLED at once (200): the
    payment is voided and the stock released. A confirmed order's parcel may be leaving right
    now, so its cancellation is a request (202) that shipping answers."""
    order = await orders.cancel_order(
        session=tx.session, order_id=order_id, viewer=user, note=body.reason if body else None
    )
    if order.status == "CONFIRMED":
        response.status_code = 202
    return order


@router.get(
    "/{order_id}/timeline",
    response_model=TimelinePublic,
    responses=responses(InvalidTokenError, errors.OrderNotFoundError),
)
async def order_timeline(
    *, order_id: Uuid7, session: ReadSessionDep, user: CurrentUser
) -> TimelinePublic:
    """Every event of this order's saga across services, in time order."""
    return await orders.order_timeline(session=session, order_id=order_id, viewer=user)
