"""Publish events into a test run's Kafka namespace and read what the service emitted."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from shopkit.kafka import create_producer, ensure_topics
from shopkit.testing import KAFKA_BOOTSTRAP

from contracts import Envelope, Event, decode, encode, topics


async def publish(
    namespace: str, items: Sequence[Event | Envelope[Event]]
) -> list[Envelope[Event]]:
    """Send events (or exact envelopes, to redeliver one) to the namespaced topics."""
    envelopes = [i if isinstance(i, Envelope) else Envelope(data=i) for i in items]
    await ensure_topics(KAFKA_BOOTSTRAP, sorted({namespace + e.topic for e in envelopes}))
    producer = create_producer(KAFKA_BOOTSTRAP, client_id="catalog-tests")
    await producer.start()
    try:
        futures = []
        for item in envelopes:
            record = encode(item)
            futures.append(
                await producer.send(
                    namespace + record.topic,
                    value=record.value,
                    key=record.key,
                    headers=list(record.headers),
                )
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return envelopes


async def read_topic(namespace: str, topic: str) -> list[Envelope[Event]]:
    """Every event on a namespaced topic, from the beginning up to its current end."""
    name = namespace + topic
    await ensure_topics(KAFKA_BOOTSTRAP, [name])
    consumer = AIOKafkaConsumer(
        bootstrap_servers=KAFKA_BOOTSTRAP, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(name, p) for p in range(topics.PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: list[Envelope[Event]] = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            positions = {tp: await consumer.position(tp) for tp in partitions}
            if all(positions[tp] >= ends[tp] for tp in partitions):
                break
            for records in (await consumer.getmany(timeout_ms=200)).values():
                found.extend(decode(r.headers, r.value) for r in records)  # type: ignore[arg-type]
        return found
    finally:
        await consumer.stop()


async def wait_for_events(
    namespace: str,
    event_type: type[Event],
    *,
    where: Callable[[Any], bool] = lambda _: True,
    count: int = 1,
    timeout: float = 60,
) -> list[Any]:
    """The events of a type (matching `where`) on their topic once there are `count` of them."""
    deadline = time.monotonic() + timeout
    matching: list[Any] = []
    while time.monotonic() < deadline:
        matching = [
            e.data
            for e in await read_topic(namespace, event_type.topic)
            if isinstance(e.data, event_type) and where(e.data)
        ]
        if len(matching) >= count:
            return matching
        await asyncio.sleep(0.3)
    raise AssertionError(f"expected {count} {event_type.__name__}, saw {len(matching)}")
