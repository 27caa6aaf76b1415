"""Outbox -> relay -> Kafka -> consumer -> inbox, against the real broker and database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from shopkit.consumer import ConsumerConfig, EventConsumer
from shopkit.inbox import PostgresInbox
from shopkit.outbox import MAX_EVENT_BYTES, EventTooLargeError, Outbox
from shopkit.relay import OutboxRelay, RelayConfig, asyncpg_dsn
from shopkit.testing import KAFKA_BOOTSTRAP, eventually
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts import Envelope, new_id

from .probe import ProbeHappened, effects, handlers, messaging


@asynccontextmanager
async def running(*runners: OutboxRelay | EventConsumer[object]) -> AsyncIterator[asyncio.Event]:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(r.run(stop)) for r in runners]
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait(tasks, timeout=20)


def relay_for(
    url: str, namespace: str, factory: Callable[[], AIOKafkaProducer] | None = None
) -> OutboxRelay:
    return OutboxRelay(
        RelayConfig(
            service="kittest",
            dsn=asyncpg_dsn(url),
            bootstrap=KAFKA_BOOTSTRAP,
            topic_namespace=namespace,
            idle_poll_seconds=0.2,
        ),
        producer_factory=factory,
    )


def consumer_for(
    sessionmaker: async_sessionmaker[AsyncSession],
    namespace: str,
    group: str = "probe",
    inbox_name: str = "",
) -> EventConsumer[object]:
    return EventConsumer(
        ConsumerConfig(
            service="kittest",
            group_id=f"{namespace}{group}",
            bootstrap=KAFKA_BOOTSTRAP,
            topic_namespace=namespace,
            inbox_name=inbox_name,
            max_attempts=3,
            base_backoff_seconds=0.05,
        ),
        handlers,  # type: ignore[arg-type]
        PostgresInbox(sessionmaker, messaging),
    )


async def publish(
    sessionmaker: async_sessionmaker[AsyncSession],
    events: Sequence[ProbeHappened],
    *,
    commit: bool = True,
) -> None:
    async with sessionmaker() as session, session.begin():
        await Outbox(session, messaging.outbox).add(*(Envelope(data=e) for e in events))
        if not commit:
            await session.rollback()


async def effect_counts(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(effects.c.probe_id, func.count()).group_by(effects.c.probe_id)
        )
        return {str(probe_id): int(count) for probe_id, count in rows.all()}


async def test_committed_event_is_published_and_applied_once(
    sessionmaker: async_sessionmaker[AsyncSession], database_url: str, namespace: str
) -> None:
    events = [ProbeHappened(probe_id=new_id(), value=i) for i in range(50)]
    async with running(relay_for(database_url, namespace), consumer_for(sessionmaker, namespace)):
        await publish(sessionmaker, events)
        counts = await eventually(
            lambda: _when(effect_counts(sessionmaker), lambda c: len(c) == len(events))
        )
    assert set(counts) == {e.probe_id for e in events}
    assert set(counts.values()) == {1}


async def test_rolled_back_change_publishes_nothing(
    sessionmaker: async_sessionmaker[AsyncSession], database_url: str, namespace: str
) -> None:
    rolled_back = ProbeHappened(probe_id=new_id(), value=1)
    marker = ProbeHappened(probe_id=new_id(), value=2)
    async with running(relay_for(database_url, namespace), consumer_for(sessionmaker, namespace)):
        await publish(sessionmaker, [rolled_back], commit=False)
        await publish(sessionmaker, [marker])
        counts = await eventually(
            lambda: _when(effect_counts(sessionmaker), lambda c: marker.probe_id in c)
        )
    assert rolled_back.probe_id not in counts


async def test_an_event_too_large_to_publish_fails_its_transaction_not_the_relay(
    sessionmaker: async_sessionmaker[AsyncSession], database_url: str, namespace: str
) -> None:
    """A row the broker refuses (over 1 MiB) stopped the relay at it for good: it keeps each
    key's events in order, so every key behind it waited. It is refused when written."""
    huge = ProbeHappened(probe_id=new_id(), value=1, note="x" * (MAX_EVENT_BYTES + 1))
    with pytest.raises(EventTooLargeError):
        await publish(sessionmaker, [huge])
    near = ProbeHappened(probe_id=new_id(), value=2, note="y" * (MAX_EVENT_BYTES - 4096))
    after = ProbeHappened(probe_id=new_id(), value=3)
    async with running(relay_for(database_url, namespace), consumer_for(sessionmaker, namespace)):
        await publish(sessionmaker, [near])
        await publish(sessionmaker, [after])
        # Both: they have different keys, so different partitions, and the near-limit one
        # may well arrive after the small one published behind it.
        counts = await eventually(
            lambda: _when(
                effect_counts(sessionmaker), lambda c: {near.probe_id, after.probe_id} <= set(c)
            )
        )
    assert huge.probe_id not in counts
    assert counts[near.probe_id] == counts[after.probe_id] == 1


async def _when(awaitable: object, predicate: object) -> object:
    value = await awaitable  # type: ignore[misc]
    return value if predicate(value) else None  # type: ignore[operator]


async def test_a_commit_wakes_the_relay_without_waiting_for_its_poll(
    sessionmaker: async_sessionmaker[AsyncSession], database_url: str, namespace: str
) -> None:
    relay = relay_for(database_url, namespace)
    # Far longer than the test waits: each event below has to come through the wake-up that
    # its transaction sends at commit.
    relay.config.idle_poll_seconds = 600
    warm_up = ProbeHappened(probe_id=new_id(), value=0)
    one = [ProbeHappened(probe_id=new_id(), value=1)]
    two_at_once = [ProbeHappened(probe_id=new_id(), value=v) for v in (2, 3)]
    one_then_one = [ProbeHappened(probe_id=new_id(), value=v) for v in (4, 5)]

    def arrived(events: Sequence[ProbeHappened]) -> object:
        ids = {e.probe_id for e in events}
        return lambda: _when(effect_counts(sessionmaker), lambda c: ids <= set(c))

    async with running(relay, consumer_for(sessionmaker, namespace)):
        # Published by the relay's first round or by the wake-up; either way the relay is
        # then waiting for the next one.
        await publish(sessionmaker, [warm_up])
        await eventually(arrived([warm_up]), timeout=30)
        await publish(sessionmaker, one)  # a single row: row and wake-up in one statement
        await eventually(arrived(one), timeout=30)
        await publish(sessionmaker, two_at_once)  # several rows, then the wake-up
        await eventually(arrived(two_at_once), timeout=30)
        async with sessionmaker() as session, session.begin():
            outbox = Outbox(session, messaging.outbox)
            for event in one_then_one:  # the second add must not be left without a wake-up
                await outbox.add(Envelope(data=event))
        await eventually(arrived(one_then_one), timeout=30)

    counts = await effect_counts(sessionmaker)
    assert all(counts[e.probe_id] == 1 for e in [warm_up, *one, *two_at_once, *one_then_one])


async def test_a_drained_relay_reads_the_outbox_once_per_wake_up(
    sessionmaker: async_sessionmaker[AsyncSession], database_url: str, namespace: str
) -> None:
    relay = relay_for(database_url, namespace)
    relay.config.idle_poll_seconds = 600  # only wake-ups start a round here
    reads = 0
    read_outbox = relay._round

    async def counted_round(*args: Any) -> bool:
        nonlocal reads
        reads += 1
        return await read_outbox(*args)

    relay._round = counted_round  # type: ignore[method-assign]
    events = [ProbeHappened(probe_id=new_id(), value=v) for v in range(6)]
    async with running(relay, consumer_for(sessionmaker, namespace)):
        for event in events:  # one commit, and so one wake-up, at a time
            await publish(sessionmaker, [event])
            await eventually(
                lambda e=event: _when(effect_counts(sessionmaker), lambda c: e.probe_id in c),
                timeout=30,
            )
    # One read at start-up, then one per wake-up (a wake-up that lands just after a read can
    # add one). Reading again after every round that sent something made it two per event.
    assert reads <= 1 + len(events) + 2, f"{reads} outbox reads for {len(events)} commits"
    counts = await effect_counts(sessionmaker)
    assert all(counts[e.probe_id] == 1 for e in events)
