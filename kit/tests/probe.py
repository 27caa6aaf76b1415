"""A probe event, its handler and tables, used to test the backbone in isolation.

Shared by the in-process tests and the subprocess scripts they kill.
"""

from __future__ import annotations

from typing import ClassVar

from contracts.types import Id
from shopkit.db import service_metadata
from shopkit.handlers import EventHandlers
from shopkit.inbox import EventContext
from shopkit.messaging import messaging_tables
from sqlalchemy import Column, Integer, MetaData, String, Table, insert
from sqlalchemy.dialects.postgresql import UUID

from contracts import Envelope, Event

PROBE_TOPIC = "kittest.events"

metadata: MetaData = service_metadata()
messaging = messaging_tables(metadata)
effects = Table(
    "effects",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("event_id", UUID(as_uuid=False), nullable=False),
    Column("probe_id", String(64), nullable=False),
    Column("value", Integer, nullable=False),
)


class ProbeHappened(Event):
    """Test-only event; `poison` makes its handler fail every time."""

    ce_type: ClassVar[str] = "shop.kittest.probe_happened.v1"
    topic: ClassVar[str] = PROBE_TOPIC
    key_field: ClassVar[str] = "probe_id"

    probe_id: Id
    value: int
    poison: bool = False
    note: str = ""


class PoisonError(RuntimeError):
    pass


cured: set[str] = set()
"""Probe ids whose poison was cured (lets a replayed message succeed)."""

outages: dict[str, int] = {}
"""Probe id -> how many more times its handler meets an unreachable dependency."""

handlers: EventHandlers[EventContext] = EventHandlers("probe")


@handlers.on(ProbeHappened)
async def record_effect(envelope: Envelope[ProbeHappened], ctx: EventContext) -> None:
    event = envelope.data
    if event.poison and event.probe_id not in cured:
        raise PoisonError(f"probe {event.probe_id} is poison")
    if outages.get(event.probe_id, 0) > 0:
        outages[event.probe_id] -= 1
        raise ConnectionResetError("dependency unreachable")
    await ctx.session.execute(
        insert(effects).values(event_id=envelope.id, probe_id=event.probe_id, value=event.value)
    )
