"""Coupons, as an admin defines them. Their redemption is part of checkout (checkout.py)."""

from __future__ import annotations

import re

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import new_id
from orders_service import errors
from orders_service.repository import coupons
from orders_service.schemas import COUPON_CODE_PATTERN, CouponCreate, CouponList, CouponPublic
from orders_service.service.paging import decode_cursor, encode_cursor


async def create_coupon(*, session: AsyncSession, data: CouponCreate) -> CouponPublic:
    coupon = await coupons.create(session, {"id": new_id(), **data.model_dump()})
    if coupon is None:
        raise errors.CouponExistsError(f"coupon {data.code} exists")
    return CouponPublic.model_validate(coupon)


async def get_coupon(*, session: AsyncSession, code: str) -> CouponPublic:
    coupon = await coupons.get(session, code.upper())
    if coupon is None:
        raise errors.CouponNotFoundError(f"no coupon {code.upper()}")
    return CouponPublic.model_validate(coupon)


async def list_coupons(*, session: AsyncSession, limit: int, cursor: str | None) -> CouponList:
    after = decode_cursor(cursor, _is_coupon_code) if cursor else None
    page = await coupons.page(session, after_code=after, limit=limit + 1)
    items = [CouponPublic.model_validate(c) for c in page[:limit]]
    return CouponList(
        items=items, next_cursor=encode_cursor(items[-1].code) if len(page) > limit else None
    )


def _is_coupon_code(value: str) -> bool:
    return re.fullmatch(COUPON_CODE_PATTERN, value) is not None


async def deactivate_coupon(*, session: AsyncSession, code: str) -> CouponPublic:
    """Stop new uses; orders that hold a use keep their discount."""
    coupon = await coupons.deactivate(session, code.upper())
    if coupon is None:
        raise errors.CouponNotFoundError(f"no coupon {code.upper()}")
    return CouponPublic.model_validate(coupon)
