"""Coupons and their redemptions."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import func, null, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from orders_service.models import Coupon, CouponRedemption
from orders_service.pricing import CouponTerms
from orders_service.schemas import CouponRedemptionPublic

GIVE_BACK_TURN: Final = zlib.crc32(b"shop-orders/coupon-give-back") & 0x7FFFFFFF
"""Advisory lock key on which runs of `give_back_uses` take turns."""

_TERMS = (
    Coupon.id,
    Coupon.code,
    Coupon.kind,
    Coupon.percent_off,
    Coupon.amount_off,
    Coupon.currency,
    Coupon.min_subtotal,
    Coupon.valid_from,
    Coupon.valid_until,
    Coupon.max_uses,
    Coupon.max_uses_per_user,
    Coupon.uses,
    Coupon.active,
)


async def create(session: AsyncSession, values: dict[str, Any]) -> Coupon | None:
    """Insert a coupon; None when its code is taken."""
    result = await session.execute(
        insert(Coupon)
        .values(values)
        .on_conflict_do_nothing(index_elements=[Coupon.code])
        .returning(Coupon)
    )
    return result.scalar_one_or_none()


async def get(session: AsyncSession, code: str) -> Coupon | None:
    return (await session.execute(select(Coupon).where(Coupon.code == code))).scalar_one_or_none()


async def page(session: AsyncSession, *, after_code: str | None, limit: int) -> Sequence[Coupon]:
    query = select(Coupon).order_by(Coupon.code).limit(limit)
    if after_code is not None:
        query = query.where(Coupon.code > after_code)
    return (await session.execute(query)).scalars().all()


async def deactivate(session: AsyncSession, code: str) -> Coupon | None:
    result = await session.execute(
        update(Coupon).where(Coupon.code == code).values(active=False).returning(Coupon)
    )
    return result.scalar_one_or_none()


async def terms(session: AsyncSession, code: str) -> CouponTerms | None:
    row = (await session.execute(select(*_TERMS).where(Coupon.code == code))).first()
    return CouponTerms(**row._mapping) if row is not None else None


async def held_by_user(session: AsyncSession, *, coupon_id: str, user_id: str) -> int:
    """Redemptions of the coupon by the user whose orders were not cancelled."""
    return int(
        (
            await session.execute(
                select(func.count())
                .select_from(CouponRedemption)
                .where(
                    CouponRedemption.coupon_id == coupon_id,
                    CouponRedemption.user_id == user_id,
                    CouponRedemption.released_at.is_(None),
                )
            )
        ).scalar_one()
    )


async def take_use(session: AsyncSession, *, code: str, now: datetime) -> CouponTerms | None:
    """Count one more use of the coupon if it is usable now; None if it is not.

    The row stays locked until the transaction ends, so concurrent checkouts with the same
    coupon queue here and each re-checks the limit against the committed count
    (READ COMMITTED re-evaluates the WHERE clause on the locked, newest row version)."""
    row = (
        await session.execute(
            update(Coupon)
            .where(
                Coupon.code == code,
                Coupon.active.is_(True),
                or_(Coupon.max_uses.is_(None), Coupon.uses < Coupon.max_uses),
                or_(Coupon.valid_from.is_(None), Coupon.valid_from <= now),
                or_(Coupon.valid_until.is_(None), Coupon.valid_until > now),
            )
            .values(uses=Coupon.uses + 1)
            .returning(*_TERMS)
        )
    ).first()
    return CouponTerms(**row._mapping) if row is not None else None


async def add_redemption(
    session: AsyncSession,
    *,
    order_id: str,
    coupon_id: str,
    user_id: str,
    discount: int,
    now: datetime,
) -> None:
    await session.execute(
        insert(CouponRedemption).values(
            order_id=order_id,
            coupon_id=coupon_id,
            user_id=user_id,
            discount=discount,
            redeemed_at=now,
        )
    )


async def release(session: AsyncSession, *, order_id: str, now: datetime) -> bool:
    """Mark the order's redemption released (once); True if there was one to release.

    Only the redemption's own row: its use goes back to the coupon afterwards, in a
    transaction of its own (`give_back_uses`). This one may be a saga batch that goes on to
    lock other orders, and must not hold the coupon row that checkouts queue on meanwhile."""
    result = await session.execute(
        update(CouponRedemption)
        .where(CouponRedemption.order_id == order_id, CouponRedemption.released_at.is_(None))
        .values(released_at=now, return_due_at=now)
        .returning(CouponRedemption.coupon_id)
    )
    return result.first() is not None


async def give_back_uses(session: AsyncSession) -> int:
    """Give the coupons back the uses of every released redemption still due; how many.

    One statement clears the redemptions' mark and subtracts their count from each coupon, so
    a use goes back exactly when its mark goes: another run, concurrent or after a crash,
    finds nothing left (one waiting for a row re-checks `return_due_at` on the committed
    version and skips it). Runs take turns, on a lock taken by a statement of its own so the
    give-back's snapshot sees what the run before it did: two runs subtracting from the same
    coupons in different orders could deadlock. Run it in a short transaction of its own: it
    holds the coupon rows until the commit."""
    await session.execute(select(func.pg_advisory_xact_lock(GIVE_BACK_TURN)))
    due = (
        update(CouponRedemption)
        .where(CouponRedemption.return_due_at.is_not(None))
        .values(return_due_at=null())
        .returning(CouponRedemption.coupon_id)
        .cte("due")
    )
    per_coupon = (
        select(due.c.coupon_id, func.count().label("uses"))
        .group_by(due.c.coupon_id)
        .cte("per_coupon")
    )
    result = await session.execute(
        update(Coupon)
        .where(Coupon.id == per_coupon.c.coupon_id)
        .values(uses=Coupon.uses - per_coupon.c.uses)
        .returning(per_coupon.c.uses)
        # The ORM's session synchronisation does not understand the data-modifying CTE.
        .execution_options(synchronize_session=False)
    )
    return sum(result.scalars())


async def redemptions_of_user(session: AsyncSession, user_id: str) -> list[CouponRedemptionPublic]:
    """The user's coupon uses with the code used, oldest first."""
    rows = await session.execute(
        select(
            CouponRedemption.order_id,
            Coupon.code,
            CouponRedemption.discount,
            CouponRedemption.redeemed_at,
            CouponRedemption.released_at,
        )
        .join(Coupon, Coupon.id == CouponRedemption.coupon_id)
        .where(CouponRedemption.user_id == user_id)
        .order_by(CouponRedemption.redeemed_at, CouponRedemption.order_id)
    )
    return [CouponRedemptionPublic.model_validate(dict(row._mapping)) for row in rows]
