from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated

from contracts.types import utc_now
from fastapi import APIRouter, Depends, Path, Query, Request
from shopkit.db import SessionDep
from shopkit.outbox import Outbox
from shopkit.problems import responses
from shopkit.security import AdminUser

from inventory_service import service
from inventory_service.config import InventorySettings
from inventory_service.errors import (
    BelowReservedError,
    InvalidCursorError,
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

SkuPath = Annotated[str, Path(max_length=64)]
ValidSkuPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
Limit = Annotated[int, Query(ge=1, le=100)]


def _policy(request: Request) -> StockPolicy:
    settings: InventorySettings = request.app.state.settings
    return StockPolicy.from_settings(settings)


PolicyDep = Annotated[StockPolicy, Depends(_policy)]


_CURSOR_VALUE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_ADJUSTMENT_CURSOR = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _encode_cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str | None, shape: re.Pattern[str] = _CURSOR_VALUE) -> str | None:
    """The sku (or adjustment id) a page ended at; anything this service did not issue is 422."""
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidCursorError("cursor is malformed") from exc
    if not shape.fullmatch(value):
        raise InvalidCursorError("cursor is malformed")
    return value


@router.get("", response_model=StockList, responses=responses(InvalidCursorError))
async def list_stock(
    session: SessionDep,
    policy: PolicyDep,
    _: AdminUser,
    cursor: str | None = None,
    limit: Limit = 50,
) -> StockList:
    items = await service.list_stock(session, after=_decode_cursor(cursor), limit=limit + 1)
    page = items[:limit]
    next_cursor = _encode_cursor(page[-1].sku) if len(items) > limit else None
    return StockList(items=[StockPublic.of(s, policy) for s in page], next_cursor=next_cursor)


@router.get(
    "/reservations/{order_id}",
    response_model=ReservationPublic,
    responses=responses(ReservationNotFoundError),
)
async def get_reservation(
    session: SessionDep, _: AdminUser, order_id: Annotated[str, Path(max_length=64)]
) -> ReservationPublic:
    return ReservationPublic.of(await service.get_reservation(session, order_id=order_id))


@router.get("/{sku}", response_model=StockPublic, responses=responses(StockNotFoundError))
async def get_stock(session: SessionDep, policy: PolicyDep, sku: SkuPath) -> StockPublic:
    return StockPublic.of(await service.get_stock(session, sku=sku), policy)


@router.put("/{sku}", response_model=StockPublic, responses=responses(BelowReservedError))
async def set_stock(
    session: SessionDep, policy: PolicyDep, admin: AdminUser, sku: ValidSkuPath, body: StockSet
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
    "/{sku}/adjustments",
    response_model=AdjustmentList,
    responses=responses(StockNotFoundError, InvalidCursorError),
)
async def list_adjustments(
    session: SessionDep, _: AdminUser, sku: SkuPath, cursor: str | None = None, limit: Limit = 50
) -> AdjustmentList:
    await service.get_stock(session, sku=sku)
    items = await service.list_adjustments(
        session, sku=sku, before=_decode_cursor(cursor, _ADJUSTMENT_CURSOR), limit=limit + 1
    )
    page = items[:limit]
    return AdjustmentList(
        items=[AdjustmentPublic.model_validate(a) for a in page],
        next_cursor=_encode_cursor(page[-1].id) if len(items) > limit else None,
    )
