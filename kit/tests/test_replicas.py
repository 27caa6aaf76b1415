"""Several replicas of a service: one active relay at a time, consumers sharing a group."""

from __future__ import annotations

import asyncio

from shopkit.testing import eventually, fetchval
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts import new_id

from .probe import ProbeHappened
from .test_backbone import consumer_for, effect_counts, publish, relay_for, running
from .test_crashes import _topic_ids


async def test_two_relays_publish_each_event_once_and_the_standby_takes_over(
    sessionmaker: async_sessionmaker[AsyncSession], database_url: str, namespace: str
) -> None:
    relays = [relay_for(database_url, namespace), relay_for(database_url, namespace)]
    stops = [asyncio.Event(), asyncio.Event()]
    tasks = [asyncio.create_task(r.run(stop)) for r, stop in zip(relays, stops, strict=True)]
    events = [ProbeHappened(probe_id=new_id(), value=i) for i in range(300)]
    try:
        await eventually(lambda: _async(any(r.is_leader for r in relays)))
        await publish(sessionmaker, events[:150])
        await eventually(lambda: _drained(database_url))
        leader = 0 if relays[0].is_leader else 1
        standby = 1 - leader
        assert not relays[standby].is_leader
        assert relays[standby].published == 0
        assert relays[leader].published == 150

        # The leader goes away: the standby takes over and publishes the rest.
        stops[leader].set()
        await tasks[leader]
        await publish(sessionmaker, events[150:])
        await eventually(lambda: _drained(database_url), timeout=30)
        assert relays[standby].is_leader
        assert relays[standby].published == 150
    finally:
        for stop in stops:
            stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    ids = await _topic_ids(namespace)
    assert len(ids) == len(events)
    assert len(set(ids)) == len(events)  # nothing published twice


async def test_consumers_joining_and_leaving_a_group_apply_every_event_once(
    sessionmaker: async_sessionmaker[AsyncSession], database_url: str, namespace: str
) -> None:
    events = [ProbeHappened(probe_id=new_id(), value=i) for i in range(600)]
    first = consumer_for(sessionmaker, namespace)
    second = consumer_for(sessionmaker, namespace)
    stop_first, stop_second = asyncio.Event(), asyncio.Event()
    async with running(relay_for(database_url, namespace)):
        first_task = asyncio.create_task(first.run(stop_first))
        await publish(sessionmaker, events[:200])
        await eventually(lambda: _applied(sessionmaker, 200), timeout=60, interval=0.3)
        second_task = asyncio.create_task(second.run(stop_second))  # rebalance: a member joins
        await second.ready.wait()
        for start in range(200, 400, 20):  # events keep coming while partitions move
            await publish(sessionmaker, events[start : start + 20])
            await asyncio.sleep(0.1)
        await eventually(lambda: _applied(sessionmaker, 400), timeout=60, interval=0.3)
        stop_first.set()  # rebalance: a member leaves
        await first_task
        await publish(sessionmaker, events[400:])
        await eventually(lambda: _applied(sessionmaker, len(events)), timeout=90, interval=0.5)
        stop_second.set()
        await second_task
    counts = await effect_counts(sessionmaker)
    assert set(counts) == {e.probe_id for e in events}
    assert set(counts.values()) == {1}
    assert first.handled > 0 and second.handled > 0


async def _drained(database_url: str) -> bool:
    return bool(
        await fetchval(database_url, "SELECT count(*) = 0 FROM outbox WHERE sent_at IS NULL")
    )


async def _applied(sessionmaker: async_sessionmaker[AsyncSession], expected: int) -> bool:
    return len(await effect_counts(sessionmaker)) >= expected


async def _async(value: bool) -> bool:
    return value
