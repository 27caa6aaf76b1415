"""Coupons, as an admin defines them, and the uses cancelled orders give back. Their
redemption is part of checkout (checkout.py)."""

from __future__ import annotations

import logging
import re

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import new_id
from orders_service import errors
from orders_service.repository import coupons
from orders_service.schemas import COUPON_CODE_PATTERN, CouponCreate, CouponList, CouponPublic
from orders_service.service.paging import decode_cursor, encode_cursor
from orders_service.session import after_commit

log = logging.getLogger(__name__)


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


async def give_back_uses(*, session: AsyncSession) -> int:
    """Give the coupons back the uses of cancelled orders, in a short transaction of its own
    (`session` must not be in one); returns how many went back."""
    async with session.begin():
        return await coupons.give_back_uses(session)


def give_back_uses_after_commit(session: AsyncSession) -> None:
    """Once this transaction commits, give back the coupon uses it released (once per
    transaction: one give-back returns every use due). Should that fail, or the process stop
    first, housekeeping gives them back (jobs.py); until then the coupon counts them as taken,
    which can refuse a checkout for a while but never lets one over the limit."""

    async def give_back() -> None:
        # The cancellation is committed: failing its request or batch now would only mislead.
        await try_giving_back_uses(session=session)

    after_commit(session, give_back, key="coupon-give-back")


async def try_giving_back_uses(*, session: AsyncSession) -> int:
    """`give_back_uses`, logging a failure instead of raising it: the uses stay due, and the
    next give-back (housekeeping's, every round) returns them."""
    try:
        return await give_back_uses(session=session)
    except Exception:
        log.warning("coupon uses not given back yet; they stay due", exc_info=True)
        return 0
