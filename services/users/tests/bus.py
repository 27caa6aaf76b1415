"""Test helpers: publish events into a test run's Kafka namespace and read what services emit,
and serve an ASGI app on a real loopback port (stand-in servers, public endpoints)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from contracts.topics import PARTITIONS
from shopkit.kafka import ensure_topics
from shopkit.testing import KAFKA_BOOTSTRAP

from contracts import Envelope, Event, decode, encode


def envelope(event: Event, **fields: Any) -> Envelope[Event]:
    return Envelope(data=event, **fields)


async def publish(namespace: str, *items: Event | Envelope[Event]) -> list[Envelope[Event]]:
    """Send events (or exact envelopes, to redeliver one) to the namespaced topics."""
    envelopes = [i if isinstance(i, Envelope) else Envelope(data=i) for i in items]
    await ensure_topics(KAFKA_BOOTSTRAP, sorted({namespace + e.topic for e in envelopes}))
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA_BOOTSTRAP, enable_idempotence=True)
    await producer.start()
    try:
        for item in envelopes:
            record = encode(item)
            await producer.send_and_wait(
                namespace + record.topic,
                value=record.value,
                key=record.key,
                headers=list(record.headers),
            )
    finally:
        await producer.stop()
    return envelopes


async def read_topic(namespace: str, topic: str) -> list[Envelope[Event]]:
    """Every decodable event on a namespaced topic, from the beginning."""
    name = namespace + topic
    await ensure_topics(KAFKA_BOOTSTRAP, [name])
    consumer = AIOKafkaConsumer(
        bootstrap_servers=KAFKA_BOOTSTRAP, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(name, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: list[Envelope[Event]] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            positions = {tp: await consumer.position(tp) for tp in partitions}
            if all(positions[tp] >= ends[tp] for tp in partitions):
                break
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    found.append(decode(record.headers, record.value))  # type: ignore[arg-type]
        return found
    finally:
        await consumer.stop()


async def wait_for_events(
    namespace: str,
    topic: str,
    event_type: type[Event],
    *,
    where: Callable[[Any], bool] = lambda _: True,
    count: int = 1,
    within: float = 30,
) -> list[Any]:
    """The events of a type (matching `where`) once at least `count` of them are on the topic."""
    deadline = time.monotonic() + within
    matching: list[Any] = []
    while time.monotonic() < deadline:
        matching = [
            e.data
            for e in await read_topic(namespace, topic)
            if isinstance(e.data, event_type) and where(e.data)
        ]
        if len(matching) >= count:
            return matching
        await asyncio.sleep(0.3)
    raise AssertionError(f"{count} {event_type.__name__} not seen on {topic}; saw {len(matching)}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def serve(app: Any, *, lifespan: str = "off") -> AsyncIterator[str]:
    """Serve an ASGI app on a loopback port for the duration; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan=lifespan, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def skus_of(events: Sequence[Any]) -> list[str]:
    return sorted(sku for e in events for sku in e.skus)
