"""Orders, their lines, status history and the events they ignored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from shopkit.db import table_of
from sqlalchemy import (
    ColumnElement,
    RowMapping,
    Text,
    Update,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by, insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import new_id
from orders_service.changes import CHANNEL as CHANGES_CHANNEL
from orders_service.models import IgnoredEvent, Order, OrderLine, OrderStatusChange
from orders_service.schemas import IgnoredEventPublic, OrderPublic, OrderSummary, StuckOrder
from orders_service.state import StuckReason

_orders = table_of(Order)
_lines = table_of(OrderLine)
_history = table_of(OrderStatusChange)


@dataclass(frozen=True, slots=True)
class LockedOrder:
    """The facts the state machine decides on, read under a row lock."""

    id: str
    user_id: str
    status: str
    total: int
    currency: str
    payment_status: str
    subtotal: int
    discount: int
    shipping: int
    payment_id: str | None
    shipping_address: dict[str, Any]
    shipping_choice: dict[str, Any]
    coupon_code: str | None
    lines: list[dict[str, Any]]
    """sku, product_id, name, quantity, unit_price, line_total (for OrderConfirmed)"""
    cancellation_status: str | None = None
    cancellation_reason: str | None = None
    cancellation_note: str | None = None
    cancellation_actor: str | None = None
    cancellation_requested_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class StuckRule:
    statuses: tuple[str, ...]
    changed_before: datetime
    """In these statuses since before this; or, for a cancellation rule, asked since before."""
    reason: StuckReason
    cancellation: bool = False
    """Orders whose cancellation request shipping has not answered (status unchanged)."""


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One row of the status history."""

    from_status: str | None
    to_status: str
    reason: str
    at: datetime
    event_id: str | None = None
    event_type: str | None = None
    actor: str | None = None


def _json_lines() -> Any:
    line = func.jsonb_build_object(
        "sku",
        _lines.c.sku,
        "product_id",
        _lines.c.product_id,
        "name",
        _lines.c.name,
        "quantity",
        _lines.c.quantity,
        "unit_price",
        _lines.c.unit_price,
        "line_total",
        _lines.c.line_total,
    )
    return (
        select(
            func.coalesce(
                func.jsonb_agg(aggregate_order_by(line, _lines.c.line_no)), text("'[]'::jsonb")
            )
        )
        .where(_lines.c.order_id == _orders.c.id)
        .scalar_subquery()
    )


# The saga runs these for every event it applies: built once, with bound parameters.
_LOCK = (
    select(
        _orders.c.id,
        _orders.c.user_id,
        _orders.c.status,
        _orders.c.total,
        _orders.c.currency,
        _orders.c.payment_status,
        _orders.c.subtotal,
        _orders.c.discount,
        _orders.c.shipping,
        _orders.c.payment_id,
        _orders.c.shipping_address,
        _orders.c.shipping_choice,
        _orders.c.coupon_code,
        _json_lines().label("lines"),
        _orders.c.cancellation_status,
        _orders.c.cancellation_reason,
        _orders.c.cancellation_note,
        _orders.c.cancellation_actor,
        _orders.c.cancellation_requested_at,
    )
    .where(_orders.c.id == bindparam("order_id"))
    .with_for_update(of=_orders)
)
_HISTORY_COLUMNS = (
    "from_status",
    "to_status",
    "reason",
    "event_id",
    "event_type",
    "actor",
    "at",
)


@cache
def _change_status_statement(fields: tuple[str, ...]) -> Update:
    """The status change that also sets `fields` (one statement per set of fields)."""
    at = bindparam("at", type_=_history.c.at.type)
    history = (
        insert(_history)
        .values(
            id=bindparam("history_id"),
            order_id=bindparam("order_id"),
            **{name: bindparam(name) for name in _HISTORY_COLUMNS},
        )
        .cte("history")
    )
    return (
        update(_orders)
        .where(_orders.c.id == bindparam("order_id"))
        # Wakes requests waiting for this order (changes.py), at commit.
        .returning(func.pg_notify(CHANGES_CHANNEL, cast(_orders.c.id, Text)))
        .values(
            status=bindparam("to_status"),
            status_changed_at=at,
            updated_at=at,
            **{name: bindparam(f"set_{name}") for name in fields},
        )
        .add_cte(history)
    )


async def lock(session: AsyncSession, order_id: str) -> LockedOrder | None:
    """The order, row-locked until the transaction ends, with its lines, in one query."""
    row = (await session.execute(_LOCK, {"order_id": order_id})).first()
    return LockedOrder(**row._mapping) if row is not None else None


async def change_status(
    session: AsyncSession, order_id: str, change: StatusChange, **values: Any
) -> None:
    """Set the new status (and `values`) and append the history row, in one statement."""
    await session.execute(
        _change_status_statement(tuple(sorted(values))),
        {
            "order_id": order_id,
            "history_id": new_id(),
            **{name: getattr(change, name) for name in _HISTORY_COLUMNS},
            **{f"set_{name}": value for name, value in values.items()},
        },
    )


async def set_fields(session: AsyncSession, order_id: str, **values: Any) -> None:
    await session.execute(update(_orders).where(_orders.c.id == order_id).values(**values))


async def record_ignored(
    session: AsyncSession,
    *,
    order_id: str,
    event_id: str,
    event_type: str,
    order_status: str | None,
    reason: str,
) -> None:
    await session.execute(
        insert(IgnoredEvent)
        .values(
            order_id=order_id,
            event_id=event_id,
            event_type=event_type,
            order_status=order_status,
            reason=reason[:200],
        )
        .on_conflict_do_nothing()
    )


def _json_history() -> Any:
    change = func.jsonb_build_object(
        "from",
        _history.c.from_status,
        "to",
        _history.c.to_status,
        "reason",
        _history.c.reason,
        "at",
        _history.c.at,
        "event_id",
        _history.c.event_id,
        "event_type",
        _history.c.event_type,
    )
    return (
        select(
            func.coalesce(
                func.jsonb_agg(aggregate_order_by(change, _history.c.at, _history.c.id)),
                text("'[]'::jsonb"),
            )
        )
        .where(_history.c.order_id == _orders.c.id)
        .scalar_subquery()
    )


def _detail_query() -> Any:
    return select(_orders, _json_lines().label("lines"), _json_history().label("history"))


async def detail(session: AsyncSession, order_id: str) -> OrderPublic | None:
    """The whole order, its lines and its history, in one round trip."""
    row = (await session.execute(_detail_query().where(_orders.c.id == order_id))).first()
    return _detail(row._mapping) if row is not None else None


async def details_of_user(session: AsyncSession, user_id: str) -> list[OrderPublic]:
    """Every order of the user, whole (lines and history), oldest first."""
    rows = await session.execute(
        _detail_query().where(_orders.c.user_id == user_id).order_by(_orders.c.id)
    )
    return [_detail(row._mapping) for row in rows]


def _detail(order: RowMapping) -> OrderPublic:
    return OrderPublic.model_validate(
        {
            "id": order["id"],
            "user_id": order["user_id"],
            "status": order["status"],
            "lines": order["lines"],
            "subtotal": order["subtotal"],
            "discount": order["discount"],
            "shipping": order["shipping"],
            "total": order["total"],
            "currency": order["currency"],
            "coupon_code": order["coupon_code"],
            "shipping_address": order["shipping_address"],
            "shipping_choice": order["shipping_choice"],
            "history": order["history"],
            "payment": {
                "status": order["payment_status"],
                "payment_id": order["payment_id"],
                "payment_method_id": order["payment_method_id"],
                # Only while the customer still has something to do.
                "next_action": order["payment_next_action"]
                if order["status"] == "AWAITING_PAYMENT"
                else None,
            },
            "cancel_reason": order["cancel_reason"],
            "cancellation": {
                "status": order["cancellation_status"],
                "reason": order["cancellation_reason"],
                "requested_at": order["cancellation_requested_at"],
            }
            if order["cancellation_status"] is not None
            else None,
            "created_at": order["created_at"],
            "updated_at": order["updated_at"],
        }
    )


async def owner_of(session: AsyncSession, order_id: str) -> str | None:
    return (
        await session.execute(select(Order.user_id).where(Order.id == order_id))
    ).scalar_one_or_none()


async def ignored_events(session: AsyncSession, order_id: str) -> list[IgnoredEventPublic]:
    rows = await session.execute(
        select(
            IgnoredEvent.event_id,
            IgnoredEvent.event_type,
            IgnoredEvent.order_status,
            IgnoredEvent.reason,
            IgnoredEvent.received_at,
        )
        .where(IgnoredEvent.order_id == order_id)
        .order_by(IgnoredEvent.received_at)
    )
    return [IgnoredEventPublic.model_validate(dict(row._mapping)) for row in rows]


def _summary_columns() -> tuple[Any, ...]:
    item_count = (
        select(func.coalesce(func.sum(OrderLine.quantity), 0))
        .where(OrderLine.order_id == Order.id)
        .scalar_subquery()
    )
    return (
        Order.id,
        Order.user_id,
        Order.status,
        Order.total,
        Order.currency,
        item_count.label("item_count"),
        Order.created_at,
        Order.updated_at,
    )


async def page(
    session: AsyncSession,
    *,
    limit: int,
    before_id: str | None = None,
    user_id: str | None = None,
    statuses: Sequence[str] = (),
    created_from: datetime | None = None,
    created_to: datetime | None = None,
) -> list[OrderSummary]:
    """Newest first (ids are UUIDv7, so id order is creation order)."""
    conditions: list[ColumnElement[bool]] = []
    if before_id is not None:
        conditions.append(Order.id < before_id)
    if user_id is not None:
        conditions.append(Order.user_id == user_id)
    if statuses:
        conditions.append(Order.status.in_(statuses))
    if created_from is not None:
        conditions.append(Order.created_at >= created_from)
    if created_to is not None:
        conditions.append(Order.created_at < created_to)
    rows = await session.execute(
        select(*_summary_columns()).where(*conditions).order_by(Order.id.desc()).limit(limit)
    )
    return [OrderSummary.model_validate(dict(row._mapping)) for row in rows]


def _stuck_condition(rules: Sequence[StuckRule]) -> ColumnElement[bool]:
    return or_(*(_stuck_under(rule) for rule in rules))


def _stuck_under(rule: StuckRule) -> ColumnElement[bool]:
    if rule.cancellation:
        # Served by the partial index ix_orders_cancellation_requested.
        return and_(
            Order.cancellation_status == "requested",
            Order.cancellation_requested_at < rule.changed_before,
            Order.status.in_(rule.statuses),
        )
    return and_(Order.status.in_(rule.statuses), Order.status_changed_at < rule.changed_before)


def _stuck_reason_and_since(
    rules: Sequence[StuckRule],
) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """Which rule holds an order (the first that matches: cancellation rules come first, being
    the one an admin can act on) and since when it waits: the request for an unanswered
    cancellation, the last status change otherwise."""
    matching = [(_stuck_under(rule), rule) for rule in rules]
    reason = case(*((when, literal(rule.reason)) for when, rule in matching))
    since = case(
        *(
            (
                when,
                Order.cancellation_requested_at if rule.cancellation else Order.status_changed_at,
            )
            for when, rule in matching
        )
    )
    return reason, since


async def stuck_page(
    session: AsyncSession,
    *,
    rules: Sequence[StuckRule],
    now: datetime,
    limit: int,
    after: tuple[datetime, str] | None = None,
) -> list[StuckOrder]:
    """Orders stuck under `rules`, longest stuck first."""
    reason, since = _stuck_reason_and_since(rules)
    stuck = (
        select(
            Order.id,
            Order.user_id,
            Order.status,
            Order.status_changed_at,
            Order.created_at,
            Order.total,
            Order.currency,
            reason.label("reason"),
            since.label("stuck_since"),
        )
        .where(_stuck_condition(rules))
        .subquery()
    )
    query = select(stuck)
    if after is not None:
        since_at, order_id = after
        query = query.where(
            or_(
                stuck.c.stuck_since > since_at,
                and_(stuck.c.stuck_since == since_at, stuck.c.id > order_id),
            )
        )
    rows = await session.execute(query.order_by(stuck.c.stuck_since, stuck.c.id).limit(limit))
    return [
        StuckOrder.model_validate(
            {**row._mapping, "stuck_for_seconds": (now - row.stuck_since).total_seconds()}
        )
        for row in rows
    ]


async def stuck_counts(session: AsyncSession, rules: Sequence[StuckRule]) -> dict[str, int]:
    rows = await session.execute(
        select(Order.status, func.count()).where(_stuck_condition(rules)).group_by(Order.status)
    )
    return {status: int(count) for status, count in rows}
