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
from shopkit.security import AdminUser

from inventory_service import service
from inventory_service.config import InventorySettings
from inventory_service.errors import (
    BelowReservedError,
    ReservationNotFoundError,
    StockNotFoundError,
)
from inventory_service.models import messaging
from inventory_service.schemas import (
    AdjustmentList,
    AdjustmentPublic,
    ReservationPublic,
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
    return StockList(items=[StockPublic.of(s, policy) for s in page], next_cursor=next_cursor)


@router.get(
    "/reservations/{order_id}",
    response_model=ReservationPublic,
    responses=responses(ReservationNotFoundError),
)
async def get_reservation(session: SessionDep, _: AdminUser, order_id: Uuid7) -> ReservationPublic:
    return ReservationPublic.of(await service.get_reservation(session, order_id=order_id))


@router.get("/{sku}", response_model=StockPublic, responses=responses(StockNotFoundError))
async def get_stock(session: SessionDep, policy: PolicyDep, sku: Sku) -> StockPublic:
    return StockPublic.of(await service.get_stock(session, sku=sku), policy)


@router.put("/{sku}", response_model=StockPublic, responses=responses(BelowReservedError))
async def set_stock(
    session: SessionDep, policy: PolicyDep, admin: AdminUser, sku: Sku, body: StockSet
) -> StockPublic:
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
        **threshold,
    )
    await Outbox(session, messaging.outbox).publish(*events)
    return StockPublic.of(stock, policy)


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
