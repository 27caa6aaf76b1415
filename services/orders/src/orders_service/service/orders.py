"""Reading orders (own, or any for admins), cancelling them, their timeline, stuck sagas."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from contracts.events.orders import CancelReason, OrderStatus
from contracts.ids import is_uuid7
from shopkit.security import Principal
from sqlalchemy.ext.asyncio import AsyncSession

from orders_service import errors
from orders_service.changes import OrderChanges
from orders_service.repository import orders, timeline
from orders_service.repository.orders import StuckRule
from orders_service.schemas import (
    OrderList,
    OrderPublic,
    StuckOrderList,
    TimelinePublic,
)
from orders_service.service.paging import decode_cursor, decode_cursor_parts, encode_cursor
from orders_service.service.transitions import Cause, RequestEmitter, cancel_or_request
from orders_service.state import CUSTOMER_CANCELLABLE, FULFILMENT, IN_FLIGHT, StuckReason, as_status


@dataclass(frozen=True, slots=True)
class StuckThresholds:
    in_flight_seconds: float
    fulfilment_seconds: float

    def rules(self, now: datetime) -> list[StuckRule]:
        in_flight_before = now - timedelta(seconds=self.in_flight_seconds)
        return [
            # A cancellation request is a step of the saga: shipping answers within seconds, and
            # one it never answered (its OrderConfirmed parked, say) must not wait two weeks.
            # First: an order it holds is listed for it, the reason an admin can act on.
            StuckRule(
                ("CONFIRMED",), in_flight_before, "cancellation_unanswered", cancellation=True
            ),
            StuckRule(tuple(sorted(IN_FLIGHT)), in_flight_before, "in_flight"),
            StuckRule(
                tuple(sorted(FULFILMENT)),
                now - timedelta(seconds=self.fulfilment_seconds),
                "fulfilment",
            ),
        ]

    def by_status(self) -> dict[str, float]:
        return {
            **dict.fromkeys(sorted(IN_FLIGHT), self.in_flight_seconds),
            **dict.fromkeys(sorted(FULFILMENT), self.fulfilment_seconds),
        }

    def by_reason(self) -> dict[StuckReason, float]:
        return {
            "in_flight": self.in_flight_seconds,
            "fulfilment": self.fulfilment_seconds,
            "cancellation_unanswered": self.in_flight_seconds,
        }


async def _visible_order_id(session: AsyncSession, order_id: str, viewer: Principal) -> str:
    """The order id if the viewer may see the order. Someone else's order is "not found", the
    same answer as a missing one, so ids cannot be probed."""
    if is_uuid7(order_id):
        owner = await orders.owner_of(session, order_id)
        if owner is not None and (owner == viewer.user_id or viewer.is_admin):
            return order_id
    raise errors.OrderNotFoundError(f"no order {order_id}")


async def get_order(*, session: AsyncSession, order_id: str, viewer: Principal) -> OrderPublic:
    order = await orders.detail(session, order_id) if is_uuid7(order_id) else None
    if order is None or (order.user_id != viewer.user_id and not viewer.is_admin):
        raise errors.OrderNotFoundError(f"no order {order_id}")
    if viewer.is_admin:
        order.ignored_events = await orders.ignored_events(session, order_id)
    return order


async def await_order(
    *,
    session: AsyncSession,
    changes: OrderChanges,
    order_id: str,
    viewer: Principal,
    wait_while: Collection[str],
    wait_seconds: float,
) -> OrderPublic:
    """The order, once its status is not in `wait_while` or `wait_seconds` have passed: one
    request instead of a client polling while the saga runs."""
    with changes.watch(order_id) as changed:  # before reading: no change can slip in between
        order = await get_order(session=session, order_id=order_id, viewer=viewer)
        if order.status not in wait_while or wait_seconds <= 0:
            return order
        await session.close()  # hold no pooled connection while waiting
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed, wait_seconds)
    return await get_order(session=session, order_id=order_id, viewer=viewer)


def _before_id(cursor: str | None) -> str | None:
    return None if cursor is None else decode_cursor(cursor, is_uuid7)


async def list_own_orders(
    *, session: AsyncSession, viewer: Principal, limit: int, cursor: str | None
) -> OrderList:
    page = await orders.page(
        session, limit=limit + 1, before_id=_before_id(cursor), user_id=viewer.user_id
    )
    return OrderList(
        items=page[:limit],
        next_cursor=encode_cursor(page[limit - 1].id) if len(page) > limit else None,
    )


async def list_all_orders(
    *,
    session: AsyncSession,
    limit: int,
    cursor: str | None,
    statuses: list[OrderStatus],
    user_id: str | None,
    created_from: datetime | None,
    created_to: datetime | None,
) -> OrderList:
    if user_id is not None and not is_uuid7(user_id):
        return OrderList(items=[], next_cursor=None)
    page = await orders.page(
        session,
        limit=limit + 1,
        before_id=_before_id(cursor),
        user_id=user_id,
        statuses=statuses,
        created_from=created_from,
        created_to=created_to,
    )
    return OrderList(
        items=page[:limit],
        next_cursor=encode_cursor(page[limit - 1].id) if len(page) > limit else None,
    )


async def cancel_order(
    *, session: AsyncSession, order_id: str, viewer: Principal, note: str | None
) -> OrderPublic:
    """Cancel before dispatch. An order not yet confirmed is cancelled at once: payments voids
    whatever it holds, inventory releases the stock. A CONFIRMED order's parcel may be leaving
    at this very moment and only shipping knows, so its cancellation is requested: the order
    is cancelled when shipping voids the parcel, or ships with the request refused when the
    dispatch won. (Cancelling at once would refund a customer whose parcel is on its way.)"""
    await _visible_order_id(session, order_id, viewer)
    order = await orders.lock(session, order_id)
    assert order is not None
    status = as_status(order.status)
    if status not in CUSTOMER_CANCELLABLE:
        raise errors.InvalidTransitionError(
            f"an order that is {status} cannot be cancelled", order_status=status
        )
    cancel_reason: CancelReason = (
        "customer_request" if order.user_id == viewer.user_id else "admin_request"
    )
    await cancel_or_request(
        session,
        RequestEmitter(session, correlation_id=order_id),
        order,
        reason=cancel_reason,
        note=note or cancel_reason,
        cause=Cause(actor=viewer.user_id),
        actor=viewer.user_id,
    )
    return await get_order(session=session, order_id=order_id, viewer=viewer)


async def order_timeline(
    *, session: AsyncSession, order_id: str, viewer: Principal
) -> TimelinePublic:
    await _visible_order_id(session, order_id, viewer)
    events = await timeline.for_order(session, order_id, with_data=viewer.is_admin)
    return TimelinePublic(order_id=order_id, events=events)


async def stuck_orders(
    *, session: AsyncSession, thresholds: StuckThresholds, limit: int, cursor: str | None
) -> StuckOrderList:
    now = datetime.now(UTC)
    after: tuple[datetime, str] | None = None
    if cursor is not None:
        changed_at, order_id = decode_cursor_parts(cursor, 2)
        try:
            # Issued cursors carry an offset; a forged one at the edge of the calendar can
            # overflow on its way to UTC, which the driver would do at the query.
            at = datetime.fromisoformat(changed_at)
            after = (at.astimezone(UTC), order_id)
        except (ValueError, OverflowError) as exc:
            raise errors.InvalidCursorError("cursor is not one this API issued") from exc
        if at.tzinfo is None or not is_uuid7(order_id):
            raise errors.InvalidCursorError("cursor is not one this API issued")
    page = await orders.stuck_page(
        session, rules=thresholds.rules(now), now=now, limit=limit + 1, after=after
    )
    last = page[limit - 1] if len(page) > limit else None
    return StuckOrderList(
        items=page[:limit],
        next_cursor=encode_cursor(last.stuck_since.isoformat(), last.id) if last else None,
        thresholds=thresholds.by_status(),
        thresholds_by_reason=thresholds.by_reason(),
    )


async def count_stuck(*, session: AsyncSession, thresholds: StuckThresholds) -> dict[str, int]:
    return await orders.stuck_counts(session, thresholds.rules(datetime.now(UTC)))
