"""/api/coupons: coupon administration."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from shopkit.db import ReadSessionDep, SessionDep
from shopkit.problems import ForbiddenError, responses
from shopkit.security import AdminUser, InvalidTokenError

from orders_service import errors
from orders_service.schemas import CouponCreate, CouponList, CouponPublic
from orders_service.service import coupons

router = APIRouter(prefix="/api/coupons", tags=["coupons"])


@router.post(
    "",
    status_code=201,
    response_model=CouponPublic,
    responses=responses(InvalidTokenError, errors.CouponExistsError, ForbiddenError),
)
async def create_coupon(*, body: CouponCreate, session: SessionDep, _: AdminUser) -> CouponPublic:
    return await coupons.create_coupon(session=session, data=body)


@router.get("", response_model=CouponList, responses=responses(InvalidTokenError, ForbiddenError))
async def list_coupons(
    *,
    session: ReadSessionDep,
    _: AdminUser,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: str | None = None,
) -> CouponList:
    return await coupons.list_coupons(session=session, limit=limit, cursor=cursor)


@router.get(
    "/{code}",
    response_model=CouponPublic,
    responses=responses(InvalidTokenError, errors.CouponNotFoundError, ForbiddenError),
)
async def get_coupon(*, code: str, session: ReadSessionDep, _: AdminUser) -> CouponPublic:
    return await coupons.get_coupon(session=session, code=code)


@router.delete(
    "/{code}",
    response_model=CouponPublic,
    responses=responses(InvalidTokenError, errors.CouponNotFoundError, ForbiddenError),
)
async def deactivate_coupon(*, code: str, session: SessionDep, _: AdminUser) -> CouponPublic:
    """Deactivate: no new uses; orders holding a use keep their discount."""
    return await coupons.deactivate_coupon(session=session, code=code)
