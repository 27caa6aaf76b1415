"""Crashes at the worst moments lose nothing and apply nothing twice (real processes, SIGKILL)."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer
from shopkit.kafka import committed_offsets, partitions_of
from shopkit.testing import KAFKA_BOOTSTRAP, eventually, fetchval
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts import decode, new_id

from .probe import PROBE_TOPIC, ProbeHappened
from .test_backbone import consumer_for, effect_counts, publish, relay_for, running

ROOT = Path(__file__).resolve().parents[2]


async def _spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def _topic_ids(namespace: str) -> list[str]:
    """Every event id currently in the probe topic, duplicates included: read until every
    partition's position reaches the end offset taken first (a fresh consumer's first fetch
    can take seconds, so an empty fetch does not mean the end)."""
    partitions = await partitions_of(KAFKA_BOOTSTRAP, namespace + PROBE_TOPIC)
    assert partitions, "the probe topic does not exist"
    consumer = AIOKafkaConsumer(
        bootstrap_servers=KAFKA_BOOTSTRAP, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    ids: list[str] = []
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        deadline = time.monotonic() + 60  # a cold broker's first fetches, on a loaded machine
        while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
            assert time.monotonic() < deadline, "the probe topic was not read to its end"
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                ids += [decode(list(r.headers), r.value).id for r in records]
        return ids
    finally:
        await consumer.stop()


async def test_relay_killed_after_commit_before_publish_publishes_after_restart(
    sessionmaker: async_sessionmaker[AsyncSession], database_url: str, namespace: str
) -> None:
    from shopkit.relay import asyncpg_dsn

    # A relay that holds the leadership but cannot reach any broker: rows stay unpublished.
    doomed = await _spawn(
        "-m",
        "shopkit.relay",
        "--dsn",
        asyncpg_dsn(database_url),
        "--service",
        "kittest",
        "--bootstrap",
        "127.0.0.1:9",
        "--topic-namespace",
        namespace,
    )
    event = ProbeHappened(probe_id=new_id(), value=7)
    await publish(sessionmaker, [event])
    await asyncio.sleep(1.5)
    assert await fetchval(database_url, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 1
    doomed.send_signal(signal.SIGKILL)
    await doomed.wait()

    # The killed relay's advisory lock died with its connection: a new relay takes over.
    async with running(relay_for(database_url, namespace)):
        await eventually(
            lambda: fetchval(database_url, "SELECT count(*) = 0 FROM outbox WHERE sent_at IS NULL")
        )
    ids = await _topic_ids(namespace)
    assert ids.count(await fetchval(database_url, "SELECT event_id::text FROM outbox")) == 1


async def test_consumer_killed_between_effect_and_offset_commit_applies_once(
    sessionmaker: async_sessionmaker[AsyncSession], database_url: str, namespace: str
) -> None:
    group = f"{namespace}probe"
    event = ProbeHappened(probe_id=new_id(), value=3)
    async with running(relay_for(database_url, namespace)):
        await publish(sessionmaker, [event])
        crashing = await _spawn(
            str(ROOT / "kit/tests/crashing_consumer.py"), database_url, namespace, group
        )
        assert await asyncio.wait_for(crashing.wait(), 60) == -signal.SIGKILL
    output = (await crashing.stdout.read()).decode() if crashing.stdout else ""
    assert "dying before the offset commit" in output

    # The effect is durable, the offset is not.
    assert (await effect_counts(sessionmaker)) == {event.probe_id: 1}
    assert await committed_offsets(KAFKA_BOOTSTRAP, group) == {}

    # Restarted, the consumer gets the message again; the inbox makes it a no-op.
    consumer = consumer_for(sessionmaker, namespace)
    async with running(consumer):
        # (the killed member must first time out of the group: session_timeout_ms)
        await eventually(lambda: _offsets_committed(group, namespace), timeout=60, interval=1)
    assert (await effect_counts(sessionmaker)) == {event.probe_id: 1}
    assert await fetchval(database_url, "SELECT count(*) FROM inbox") == 1


async def _offsets_committed(group: str, namespace: str) -> bool:
    return bool(await committed_offsets(KAFKA_BOOTSTRAP, group))
