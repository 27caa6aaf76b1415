"""The transactional outbox writer: events are rows in the caller's transaction.

A state change and the events announcing it commit together or not at all; the relay
(`shopkit.relay`) publishes committed rows to Kafka afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import Insert, Select, Table, bindparam, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope, Event, encode
from shopkit.tracing import current_trace_headers

_NOTIFIED = "shopkit.outbox.notified"

MAX_EVENT_BYTES = 512 * 1024
"""Largest event (payload and headers) the outbox takes: half of what the producer and the
broker accept by default (1 MiB), leaving room for the dead-letter copy's headers. A larger
row could never be published, and the relay, which keeps each key's events in order, would
stop at it for every key behind it; refused here, it fails the transaction that wrote it."""


class EventTooLargeError(ValueError):
    """An event larger than `MAX_EVENT_BYTES`: a bug of its producer, not an outage."""


def notify_channel(table: Table) -> str:
    """The PostgreSQL NOTIFY channel that wakes the relay of this outbox."""
    return f"{table.name}_pending"


def outbox_records(envelopes: Sequence[Envelope[Event]]) -> list[dict[str, Any]]:
    """What an outbox stores per event: its Kafka record and the fields the relay routes by.

    An event without trace context takes the current one, so the trace of the request that
    caused it continues in its consumers.
    """
    trace_headers = current_trace_headers()
    records = []
    for original in envelopes:
        envelope = original
        if envelope.traceparent is None and "traceparent" in trace_headers:
            envelope = envelope.with_trace(
                trace_headers["traceparent"], trace_headers.get("tracestate")
            )
        record = encode(envelope)
        size = len(record.value) + sum(len(n) + len(v) for n, v in record.headers)
        if size > MAX_EVENT_BYTES:
            raise EventTooLargeError(
                f"{envelope.type} of {envelope.subject} is {size} bytes (at most {MAX_EVENT_BYTES})"
            )
        records.append(
            {
                "event_id": envelope.id,
                "topic": record.topic,
                "key": envelope.subject,
                "ce_type": envelope.type,
                "headers": {name: value.decode() for name, value in record.headers},
                "payload": record.value,
            }
        )
    return records


_RECORD_COLUMNS = ("event_id", "topic", "key", "ce_type", "headers", "payload")
_WAKE = text("SELECT pg_notify(:channel, '')")


@cache
def _insert_one(table: Table) -> Insert:
    """The outbox insert, built once per table (building a statement costs about as much as
    sending it); executed once per row when given several."""
    return insert(table).values({name: bindparam(name) for name in _RECORD_COLUMNS})


@cache
def _insert_one_and_wake(table: Table) -> Select[Any]:
    """One outbox row and the relay's wake-up in a single round trip."""
    return select(func.pg_notify(bindparam("channel"), "")).add_cte(_insert_one(table).cte("added"))


class Outbox:
    """Adds events to the outbox through `session`; nothing is sent before the commit."""

    def __init__(self, session: AsyncSession, table: Table) -> None:
        self.session = session
        self.table = table

    async def add(self, *envelopes: Envelope[Event]) -> None:
        if not envelopes:
            return
        rows = outbox_records(envelopes)
        transaction = id(self.session.get_transaction())
        # The wake-up is delivered at commit (and dropped on rollback): the relay wakes only for
        # real rows, once per transaction.
        wake = self.session.info.get(_NOTIFIED) != transaction
        channel = {"channel": notify_channel(self.table)}
        if wake and len(rows) == 1:
            await self.session.execute(_insert_one_and_wake(self.table), {**rows[0], **channel})
        else:
            await self.session.execute(_insert_one(self.table), rows)
            if wake:
                await self.session.execute(_WAKE, channel)
        self.session.info[_NOTIFIED] = transaction

    async def publish(
        self, *events: Event, correlation_id: str = "", causation_id: str | None = None
    ) -> None:
        """Shortcut for events that start a new flow (or continue one by explicit ids)."""
        await self.add(
            *(
                Envelope(data=event, correlation_id=correlation_id, causation_id=causation_id)
                for event in events
            )
        )
