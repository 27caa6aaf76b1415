"""/api/coupons: coupon administration."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from shopkit.db import ReadSessionDep, SessionDep
from shopkit.problems import ForbiddenError, responses
from shopkit.security import AdminUser, InvalidTokenError

from orders_service import errors
from orders_service.schemas import (
    COUPON_CODE_PATTERN,
    CouponCreate,
    CouponList,
    CouponPublic,
    Cursor,
)
from orders_service.service import coupons

router = APIRouter(prefix="/api/coupons", tags=["coupons"])

CodePath = Annotated[str, Path(pattern=COUPON_CODE_PATTERN)]


@router.post(
    "",
    status_code=201,
    response_model=CouponPublic,
    responses=responses(InvalidTokenError, errors.CouponExistsError, ForbiddenError),
)
async def create_coupon(*, body: CouponCreate, session: SessionDep, _: AdminUser) -> CouponPublic:
    return await coupons.create_coupon(session=session, data=body)


@router.get(
    "",
    response_model=CouponList,
    responses=responses(InvalidTokenError, ForbiddenError, errors.InvalidCursorError),
)
async def list_coupons(
    *,
    session: ReadSessionDep,
    _: AdminUser,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Cursor = None,
) -> CouponList:
    return await coupons.list_coupons(session=session, limit=limit, cursor=cursor)


@router.get(
    "/{code}",
    response_model=CouponPublic,
    responses=responses(InvalidTokenError, errors.CouponNotFoundError, ForbiddenError),
)
async def get_coupon(*, code: CodePath, session: ReadSessionDep, _: AdminUser) -> CouponPublic:
    return await coupons.get_coupon(session=session, code=code)


@router.delete(
    "/{code}",
    response_model=CouponPublic,
    responses=responses(InvalidTokenError, errors.CouponNotFoundError, ForbiddenError),
)
async def deactivate_coupon(*, code: CodePath, session: SessionDep, _: AdminUser) -> CouponPublic:
    """Deactivate: no new uses; orders holding a use keep their discount."""
    return await coupons.deactivate_coupon(session=session, code=code)
