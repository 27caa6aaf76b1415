"""Duplicates, poison messages, malformed messages and dead-letter replay."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.protocol.fetch import FetchRequest
from shopkit.cli import read_parked, replay
from shopkit.consumer import ConsumerConfig, EventConsumer
from shopkit.handlers import EventHandlers
from shopkit.inbox import EventContext, PostgresInbox
from shopkit.kafka import REPLAY_FOR_HEADER, committed_offsets
from shopkit.testing import KAFKA_BOOTSTRAP, eventually, fetchval
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts import Envelope, encode, new_id

from . import probe
from .probe import PROBE_TOPIC, ProbeHappened
from .test_backbone import consumer_for, effect_counts, running

ROOT = Path(__file__).resolve().parents[2]


async def _produce(
    namespace: str,
    records: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]]]],
) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=KAFKA_BOOTSTRAP, enable_idempotence=True, acks="all"
    )
    await producer.start()
    try:
        for key, value, headers in records:
            await (
                await producer.send(namespace + PROBE_TOPIC, value=value, key=key, headers=headers)
            )
    finally:
        await producer.stop()


def _record(
    event: ProbeHappened, envelope_id: str | None = None
) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    envelope = Envelope(data=event) if envelope_id is None else Envelope(data=event, id=envelope_id)
    record = encode(envelope)
    return record.key, record.value, record.headers


async def test_same_event_delivered_twice_concurrently_takes_effect_once(
    sessionmaker: async_sessionmaker[AsyncSession], namespace: str
) -> None:
    # Two consumer groups sharing one inbox name play two members that both received the
    # event (as happens around a rebalance); each message is also duplicated on the topic.
    events = [ProbeHappened(probe_id=new_id(), value=i) for i in range(20)]
    records = [_record(e) for e in events]
    await _produce(namespace, records + records)
    first = consumer_for(sessionmaker, namespace, group="member-a", inbox_name="probe")
    second = consumer_for(sessionmaker, namespace, group="member-b", inbox_name="probe")
    async with running(first, second):
        # Both members have seen all 40 deliveries once their committed offsets cover them.
        for member in (first, second):
            await eventually(lambda m=member: _committed_total(m.config.group_id, len(records) * 2))
    counts = await effect_counts(sessionmaker)
    assert counts == {e.probe_id: 1 for e in events}


async def test_an_idle_consumer_asks_the_broker_rarely_yet_gets_a_new_event_at_once(
    sessionmaker: async_sessionmaker[AsyncSession], database_url: str, namespace: str
) -> None:
    consumer = consumer_for(sessionmaker, namespace)
    # Far longer than this test waits for the event below: the broker has to answer the
    # pending fetch when the event arrives, not when the wait is over.
    consumer.config.idle_fetch_wait_ms = 120_000
    fetches = 0
    async with running(consumer):

        async def assigned() -> object:
            kafka = consumer._consumer  # the client whose fetch requests are counted
            return kafka if kafka is not None and kafka.assignment() else None

        kafka = await eventually(assigned)
        send = kafka._client.send

        async def counting_send(node_id: int, request: object, **options: object) -> object:
            nonlocal fetches
            fetches += isinstance(request, FetchRequest)
            return await send(node_id, request, **options)

        kafka._client.send = counting_send
        await asyncio.sleep(3)
        fetches_while_idle = fetches
        event = ProbeHappened(probe_id=new_id(), value=1)
        await _produce(namespace, [_record(event)])
        await eventually(lambda: _effect_value_count(database_url, event.probe_id, 1), timeout=30)

    # At aiokafka's default wait (500 ms) the idle consumer would have asked six times.
    assert fetches_while_idle <= 1


async def test_poison_message_is_parked_partition_keeps_flowing_and_replay_redelivers(
    sessionmaker: async_sessionmaker[AsyncSession], database_url: str, namespace: str
) -> None:
    key_id = new_id()  # same key: same partition, right behind the poison message
    poison = ProbeHappened(probe_id=key_id, value=1, poison=True)
    follower_records = [_record(ProbeHappened(probe_id=key_id, value=v)) for v in (2, 3)]
    poison_record = _record(poison)
    await _produce(namespace, [poison_record, *follower_records])
    consumer = consumer_for(sessionmaker, namespace)
    async with running(consumer):
        await eventually(lambda: _effect_value_count(database_url, key_id, 2))
        parked = await eventually(lambda: read_parked(KAFKA_BOOTSTRAP, consumer.config.group_id))
        assert len(parked) == 1
        meta = parked[0].meta
        assert meta["dlq_reason"] == "handler_failed"
        assert "is poison" in meta["dlq_error"]
        assert meta["dlq_attempts"] == "3"
        assert meta["ce_type"] == poison.ce_type
        assert meta["dlq_original_topic"] == namespace + PROBE_TOPIC
        assert consumer.dead_lettered == 1

        # Fixed: replay through the real CLI re-delivers it, and it is applied.
        probe.cured.add(key_id)
        assert "replayed 1 message" in await _replay_with_cli(consumer.config.group_id)
        await eventually(lambda: _effect_value_count(database_url, key_id, 3))
    assert await read_parked(KAFKA_BOOTSTRAP, consumer.config.group_id) == []
    assert sorted(json.loads(json.dumps(list((await effect_counts(sessionmaker)).values())))) == [3]


async def test_a_value_the_database_cannot_take_is_parked_not_retried_forever(
    sessionmaker: async_sessionmaker[AsyncSession], namespace: str
) -> None:
    """A value PostgreSQL's column cannot take (here beyond int4) fails the same way however
    often it is retried: it must count as the handler's failure and be parked, never be taken
    for an outage (asyncpg's DataError is a PostgresError here, not one of its InterfaceErrors,
    which mean a lost connection), or the message behind it would wait forever."""
    key_id = new_id()
    too_big = ProbeHappened(probe_id=key_id, value=2**40)
    follower = ProbeHappened(probe_id=key_id, value=7)
    await _produce(namespace, [_record(too_big), _record(follower)])
    consumer = consumer_for(sessionmaker, namespace)
    async with running(consumer):
        parked = await eventually(lambda: read_parked(KAFKA_BOOTSTRAP, consumer.config.group_id))
        await eventually(lambda: _applied_all(sessionmaker, [follower]))
    assert [p.meta["dlq_reason"] for p in parked] == ["handler_failed"]
    assert parked[0].meta["dlq_attempts"] == "3"
    assert "out of int32 range" in parked[0].meta["dlq_error"]


async def test_a_replay_reaches_only_the_group_that_parked_the_message(
    sessionmaker: async_sessionmaker[AsyncSession], database_url: str, namespace: str
) -> None:
    """A parked message goes back onto its topic, which every group reads. A group that had
    applied it long ago no longer holds it in its inbox (kept for days, parked messages for a
    month) and applied it a second time."""
    key_id, event_id = new_id(), new_id()
    poison = ProbeHappened(probe_id=key_id, value=1, poison=True)
    await _produce(namespace, [_record(poison, event_id)])
    failing = consumer_for(sessionmaker, namespace, group="failing", inbox_name="failing")
    async with running(failing):
        await eventually(lambda: read_parked(KAFKA_BOOTSTRAP, failing.config.group_id))
    probe.cured.add(key_id)
    other = consumer_for(sessionmaker, namespace, group="other", inbox_name="other")
    async with running(other):
        await eventually(lambda: _effect_value_count(database_url, key_id, 1))
    forgotten = await fetchval(
        database_url,
        "WITH purged AS (DELETE FROM inbox WHERE consumer = 'other' AND event_id = $1"
        " RETURNING 1) SELECT count(*) FROM purged",
        uuid.UUID(event_id),
    )
    assert forgotten == 1  # as the inbox retention would, days later

    assert "replayed 1 message" in await _replay_with_cli(failing.config.group_id)
    async with running(failing, other):
        await eventually(lambda: _effect_value_count(database_url, key_id, 2))
        await asyncio.sleep(2)  # room for the other group to apply it again (the bug)
    assert await _effect_value_count(database_url, key_id, 2)


async def test_a_message_replayed_alone_is_no_longer_parked_and_never_replayed_again(
    sessionmaker: async_sessionmaker[AsyncSession], database_url: str, namespace: str
) -> None:
    key_id, cured_id, poison_id = new_id(), new_id(), new_id()
    await _produce(
        namespace,
        [
            _record(ProbeHappened(probe_id=key_id, value=1, poison=True), cured_id),
            _record(ProbeHappened(probe_id=new_id(), value=1, poison=True), poison_id),
        ],
    )
    consumer = consumer_for(sessionmaker, namespace)
    group = consumer.config.group_id
    async with running(consumer):
        await eventually(lambda: _parked_ids_are(group, [cured_id, poison_id]))
        probe.cured.add(key_id)
        replayed = await replay(KAFKA_BOOTSTRAP, group, cured_id)
        assert [m.meta["ce_id"] for m in replayed] == [cured_id]
        await eventually(lambda: _effect_value_count(database_url, key_id, 1))
        # Before: the message replayed alone stayed listed, and the full replay sent it again
        # (applied twice once the group's inbox has forgotten it).
        assert [m.meta["ce_id"] for m in await read_parked(KAFKA_BOOTSTRAP, group)] == [poison_id]
        replayed = await replay(KAFKA_BOOTSTRAP, group)
        assert [m.meta["ce_id"] for m in replayed] == [poison_id]


async def _parked_ids_are(group: str, expected: list[str]) -> bool:
    parked = await read_parked(KAFKA_BOOTSTRAP, group)
    return sorted(m.meta["ce_id"] for m in parked) == sorted(expected)


async def _replay_with_cli(group: str) -> str:
    replay = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shop_cli.main",
        "events",
        "dlq",
        "replay",
        group,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await replay.communicate()
    assert replay.returncode == 0, output.decode()
    return output.decode()


async def test_infrastructure_outages_are_retried_past_max_attempts_and_never_parked(
    sessionmaker: async_sessionmaker[AsyncSession], namespace: str
) -> None:
    event = ProbeHappened(probe_id=new_id(), value=5)
    probe.outages[event.probe_id] = 7  # more than max_attempts (3)
    await _produce(namespace, [_record(event)])
    consumer = consumer_for(sessionmaker, namespace)
    async with running(consumer):
        await eventually(lambda: _applied_all(sessionmaker, [event]), timeout=60)
    assert probe.outages[event.probe_id] == 0
    assert consumer.dead_lettered == 0
    assert await read_parked(KAFKA_BOOTSTRAP, consumer.config.group_id) == []


async def test_malformed_messages_go_to_the_dlq_with_a_reason_and_never_stop_the_consumer(
    sessionmaker: async_sessionmaker[AsyncSession], namespace: str
) -> None:
    good = ProbeHappened(probe_id=new_id(), value=1)
    key, value, headers = _record(ProbeHappened(probe_id=new_id(), value=9))
    unknown = [(k, b"shop.kittest.never_defined.v1" if k == "ce_type" else v) for k, v in headers]
    no_id = [(k, v) for k, v in headers if k != "ce_id"]
    wrong_schema = json.dumps({"probe_id": "not-a-uuid", "value": "x"}).encode()
    await _produce(
        namespace,
        [
            (key, b"{this is not json", headers),
            (key, value, unknown),
            (key, value, no_id),
            (key, wrong_schema, headers),
            (key, None, headers),
            _record(good),
        ],
    )
    consumer = consumer_for(sessionmaker, namespace)
    async with running(consumer):
        await eventually(lambda: _applied_all(sessionmaker, [good]))
        parked = await eventually(
            lambda: _at_least(read_parked(KAFKA_BOOTSTRAP, consumer.config.group_id), 5)
        )
    reasons = sorted(m.meta["dlq_reason"] for m in parked)
    assert reasons == [
        "invalid_payload",
        "invalid_payload",
        "invalid_payload",
        "missing_header",
        "unknown_type",
    ]
    errors = " | ".join(m.meta["dlq_error"] for m in parked)
    assert "never_defined" in errors and "ce_id" in errors and "probe_id" in errors


async def test_headers_without_a_value_are_parked_not_a_restart_loop(
    sessionmaker: async_sessionmaker[AsyncSession], namespace: str
) -> None:
    """Kafka allows a header without a value. The skip check decoded it, which raised outside
    any broker error: the consumer restarted and met the same record forever."""
    good = ProbeHappened(probe_id=new_id(), value=3)
    key, value, headers = _record(ProbeHappened(probe_id=new_id(), value=4))
    null_type = [(k, None if k == "ce_type" else v) for k, v in headers]
    null_replay = [*headers, (REPLAY_FOR_HEADER, None)]
    await _produce(
        namespace, [(key, value, null_type), (key, b"{oops", null_replay), _record(good)]
    )
    consumer = consumer_for(sessionmaker, namespace)
    async with running(consumer):
        await eventually(lambda: _applied_all(sessionmaker, [good]), timeout=30)
        parked = await eventually(
            lambda: _at_least(read_parked(KAFKA_BOOTSTRAP, consumer.config.group_id), 1)
        )
    # The second, marked as a replay for no group, is skipped like any other group's replay.
    assert [m.meta["dlq_reason"] for m in parked] == ["missing_header"]
    assert parked[0].meta["ce_type"] == ""


async def _applied_all(
    sessionmaker: async_sessionmaker[AsyncSession], events: list[ProbeHappened]
) -> bool:
    counts = await effect_counts(sessionmaker)
    return all(e.probe_id in counts for e in events)


async def _effect_value_count(database_url: str, probe_id: str, count: int) -> bool:
    found = await fetchval(
        database_url, "SELECT count(*) FROM effects WHERE probe_id = $1", probe_id
    )
    return bool(found == count)


async def _at_least(awaitable: object, n: int) -> object:
    value = await awaitable  # type: ignore[misc]
    return value if len(value) >= n else None


async def _committed_total(group: str, expected: int) -> bool:
    return sum((await committed_offsets(KAFKA_BOOTSTRAP, group)).values()) >= expected


@pytest.mark.parametrize("grouping", ["across_partitions", "by_partition_number"])
async def test_partitions_applied_together_apply_each_event_once_and_park_the_bad(
    sessionmaker: async_sessionmaker[AsyncSession], namespace: str, grouping: str
) -> None:
    merged: EventHandlers[EventContext] = EventHandlers(
        "probe-merged", linger_seconds=0.05, **{grouping: True}
    )
    merged.on(ProbeHappened)(probe.record_effect)
    events = [ProbeHappened(probe_id=new_id(), value=i) for i in range(30)]  # many keys
    poison = ProbeHappened(probe_id=new_id(), value=1, poison=True)
    records = [_record(e) for e in events]
    undecodable = (new_id().encode(), b"{not json", [("ce_type", poison.ce_type.encode())])
    await _produce(namespace, [*records, _record(poison), undecodable, *records])
    consumer = EventConsumer(
        ConsumerConfig(
            service="kittest",
            group_id=f"{namespace}merged",
            bootstrap=KAFKA_BOOTSTRAP,
            topic_namespace=namespace,
            max_attempts=2,
            base_backoff_seconds=0.05,
        ),
        merged,
        PostgresInbox(sessionmaker, probe.messaging),
    )
    async with running(consumer):
        await eventually(lambda: _committed_total(consumer.config.group_id, len(records) * 2 + 2))
        parked = await eventually(
            lambda: _at_least(read_parked(KAFKA_BOOTSTRAP, consumer.config.group_id), 2)
        )
    assert sorted(p.meta["dlq_reason"] for p in parked) == ["handler_failed", "missing_header"]
    assert await effect_counts(sessionmaker) == {e.probe_id: 1 for e in events}
