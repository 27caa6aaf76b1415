"""/api/inventory: stock levels (reads are public), their adjustments and reservations (admin).

Pages are keyset pages whose cursor is the position itself, in the clear: the sku the stock
list stopped at, the id of the last adjustment shown. Any well-formed value is therefore a
valid place to continue from, and the schema says exactly which values are well-formed.
"""

from __future__ import annotations

from typing import Annotated

from contracts.types import utc_now
from fastapi import APIRouter, Depends, Query, Request
from pydantic import WithJsonSchema
from shopkit.db import SessionDep
from shopkit.outbox import Outbox
from shopkit.params import SKU_PATTERN, OptionalUuid7, Sku, Uuid7
from shopkit.problems import responses
from shopkit.security import AdminUser, OptionalUser

from inventory_service import service
from inventory_service.config import InventorySettings
from inventory_service.errors import (
    BelowReservedError,
    ReservationNotFoundError,
    StockChangedError,
    StockNotFoundError,
)
from inventory_service.models import messaging
from inventory_service.schemas import (
    AdjustmentList,
    AdjustmentPublic,
    ReservationPublic,
    StockAdjust,
    StockAdmin,
    StockList,
    StockPublic,
    StockSet,
)
from inventory_service.service import StockPolicy

router = APIRouter(prefix="/api/inventory", tags=["inventory"])

Limit = Annotated[int, Query(ge=1, le=100)]
SkuCursor = Annotated[
    Sku | None,
    WithJsonSchema({"type": "string", "pattern": SKU_PATTERN}),
    Query(description="`next_cursor` of the previous page: the sku it ended at."),
]


async def _policy(request: Request) -> StockPolicy:
    settings: InventorySettings = request.app.state.settings
    return StockPolicy.from_settings(settings)


PolicyDep = Annotated[StockPolicy, Depends(_policy)]

# `responses=` holds one entry per status: the 409s of a route share it, the slug tells them apart.
SET_CONFLICTS = {
    **StockChangedError.response_doc(),
    "description": "Nothing was changed: `stock-changed` when `expected_on_hand` is not the "
    "stored `on_hand` (the problem carries `on_hand`, the current value), or "
    "`stock-below-reserved` when `on_hand` is below the units reserved for open orders (it "
    "carries `reserved` and `on_hand`).",
}
ADJUST_CONFLICTS = {
    **BelowReservedError.response_doc(),
    "description": "Nothing was changed: `stock-below-reserved` when on_hand would go below the "
    "units reserved for open orders (the problem carries `reserved` and `on_hand`), or "
    "`stock-above-maximum` when it would go above `maximum`.",
}


@router.get("", response_model=StockList)
async def list_stock(
    session: SessionDep,
    policy: PolicyDep,
    _: AdminUser,
    cursor: SkuCursor = None,
    limit: Limit = 50,
) -> StockList:
    items = await service.list_stock(session, after=cursor, limit=limit + 1)
    page = items[:limit]
    next_cursor = page[-1].sku if len(items) > limit else None
    return StockList(items=[StockAdmin.of(s, policy) for s in page], next_cursor=next_cursor)


@router.get(
    "/{sku}",
    response_model=StockPublic | StockAdmin,
    responses={
        200: {
            "description": "`StockPublic` for anonymous callers and customers (the storefront's "
            "availability); `StockAdmin` (units sold, threshold, product) for admins."
        },
        **responses(StockNotFoundError),
    },
)
async def get_stock(
    session: SessionDep, policy: PolicyDep, caller: OptionalUser, sku: Sku
) -> StockPublic | StockAdmin:
    """A sku's stock; anyone may read its availability, only admins the rest."""
    stock = await service.get_stock(session, sku=sku)
    if caller is not None and caller.is_admin:
        return StockAdmin.of(stock, policy)
    return StockPublic.of(stock)


@router.put("/{sku}", response_model=StockAdmin, responses={409: SET_CONFLICTS})
async def set_stock(
    session: SessionDep, policy: PolicyDep, admin: AdminUser, sku: Sku, body: StockSet
) -> StockAdmin:
    """Set the units on hand: those counted minus the parcels of confirmed orders awaiting
    dispatch, whose units already left `on_hand` (creating the sku's row if the catalog has
    not announced it yet); the change goes to the audit trail. Send `expected_on_hand` (the
    `on_hand` the new value was based on) so that a change made in between is answered with
    409 `stock-changed` instead of being overwritten; to add or remove units whatever the
    level, POST an adjustment instead."""
    threshold: dict[str, int | None] = (
        {"threshold": body.low_stock_threshold}
        if "low_stock_threshold" in body.model_fields_set
        else {}
    )
    stock, events = await service.set_stock(
        session,
        sku=sku,
        on_hand=body.on_hand,
        reason=body.reason,
        actor_id=admin.user_id,
        policy=policy,
        now=utc_now(),
        expected_on_hand=body.expected_on_hand,
        **threshold,
    )
    await Outbox(session, messaging.outbox).publish(*events)
    return StockAdmin.of(stock, policy)


@router.post(
    "/{sku}/adjustments",
    response_model=StockAdmin,
    responses={**responses(StockNotFoundError), 409: ADJUST_CONFLICTS},
)
async def adjust_stock(
    session: SessionDep, policy: PolicyDep, admin: AdminUser, sku: Sku, body: StockAdjust
) -> StockAdmin:
    """Add `delta` units on hand (negative: remove them) to the level as it is when applied, so
    no concurrent change is lost; answers the new level. The change goes to the audit trail
    and is announced like a set. 404 for a sku without a stock row (PUT creates it)."""
    stock, events = await service.adjust_stock(
        session,
        sku=sku,
        delta=body.delta,
        reason=body.reason,
        actor_id=admin.user_id,
        policy=policy,
        now=utc_now(),
    )
    await Outbox(session, messaging.outbox).publish(*events)
    return StockAdmin.of(stock, policy)


@router.get(
    "/{sku}/adjustments", response_model=AdjustmentList, responses=responses(StockNotFoundError)
)
async def list_adjustments(
    session: SessionDep,
    _: AdminUser,
    sku: Sku,
    cursor: Annotated[
        OptionalUuid7,
        Query(description="`next_cursor` of the previous page: the last adjustment's id."),
    ] = None,
    limit: Limit = 50,
) -> AdjustmentList:
    await service.get_stock(session, sku=sku)
    items = await service.list_adjustments(session, sku=sku, before=cursor, limit=limit + 1)
    page = items[:limit]
    return AdjustmentList(
        items=[AdjustmentPublic.model_validate(a) for a in page],
        next_cursor=page[-1].id if len(items) > limit else None,
    )


# Registered after every `/{sku}/...` route: Starlette takes the first route that matches, and
# `reservations` is a valid sku whose `/reservations/adjustments` must reach its audit trail.
# No order id is ever a route name (they are UUIDv7s), so nothing is lost the other way round.
@router.get(
    "/reservations/{order_id}",
    response_model=ReservationPublic,
    responses=responses(ReservationNotFoundError),
)
async def get_reservation(session: SessionDep, _: AdminUser, order_id: Uuid7) -> ReservationPublic:
    return ReservationPublic.of(await service.get_reservation(session, order_id=order_id))
