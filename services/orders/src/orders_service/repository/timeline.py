"""The saga timeline: every event of every topic, found by correlation id or subject."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shopkit.db import table_of
from sqlalchemy import delete, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from orders_service.models import TimelineEvent
from orders_service.schemas import TimelineEventPublic

_TIMELINE = table_of(TimelineEvent)


async def add(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Record events once each (a redelivered event is already there).

    Sent as one statement with many parameter sets, not a VALUES list: that statement compiles
    once, where a VALUES list of each new length compiled again (most of this consumer's CPU).
    """
    if rows:
        await session.execute(insert(_TIMELINE).on_conflict_do_nothing(), rows)


async def purge(session: AsyncSession, *, recorded_before: datetime, limit: int = 10_000) -> int:
    """Delete up to `limit` of the oldest events recorded before the cut-off."""
    doomed = (
        select(TimelineEvent.event_id)
        .where(TimelineEvent.recorded_at < recorded_before)
        .limit(limit)
    )
    result = await session.execute(
        delete(TimelineEvent)
        .where(TimelineEvent.event_id.in_(doomed.scalar_subquery()))
        .returning(TimelineEvent.event_id)
    )
    return len(result.all())


async def for_order(
    session: AsyncSession, order_id: str, *, with_data: bool
) -> list[TimelineEventPublic]:
    # The checkout flow's correlation id is the order id; events keyed by the order (a carrier
    # webhook that started its own flow) are found by subject.
    rows = await session.execute(
        select(TimelineEvent)
        .where(or_(TimelineEvent.correlation_id == order_id, TimelineEvent.subject == order_id))
        .order_by(TimelineEvent.time, TimelineEvent.event_id)
    )
    return [
        TimelineEventPublic(
            id=event.event_id,
            type=event.type,
            source=event.source,
            time=event.time,
            subject=event.subject,
            topic=event.topic,
            correlation_id=event.correlation_id,
            causation_id=event.causation_id,
            data=event.data if with_data else None,
        )
        for event in rows.scalars()
    ]
