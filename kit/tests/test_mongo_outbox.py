"""Document outbox -> relay -> Kafka -> consumer -> Mongo inbox, on the real FerretDB and broker."""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from redis.asyncio import Redis
from shopkit import mongo_outbox
from shopkit.consumer import ConsumerConfig, EventConsumer
from shopkit.handlers import EventHandlers
from shopkit.kafka import create_producer, ensure_topics
from shopkit.mongo import MongoClient, create_client
from shopkit.mongo_outbox import (
    INBOX_RETENTION,
    DocumentLocks,
    LeaseLostError,
    Leases,
    MongoEventContext,
    MongoInbox,
    MongoOutboxRelay,
    MongoRelayConfig,
    create_indexes,
    mongo_backlog,
    outbox_update,
    with_outbox,
)
from shopkit.publishing import send_each
from shopkit.testing import KAFKA_BOOTSTRAP, delete_keys, eventually, unique_suffix

from contracts import Envelope, new_id

from .probe import PROBE_TOPIC, ProbeHappened

MONGO_URL = "mongodb://127.0.0.1:27017/"
REDIS_URL = "redis://127.0.0.1:6379/0"
COLLECTION = "things"

mongo_handlers: EventHandlers[MongoEventContext] = EventHandlers("mongo-probe")
_applied_order = itertools.count()


@mongo_handlers.on(ProbeHappened)
async def record_effect(envelope: Envelope[ProbeHappened], ctx: MongoEventContext) -> None:
    # Deliberately not idempotent: a second application would show up as a second row.
    await ctx.db["effects"].insert_one(
        {
            "event_id": envelope.id,
            "probe_id": envelope.data.probe_id,
            "value": envelope.data.value,
            "applied": next(_applied_order),
        }
    )


@pytest.fixture
async def client() -> AsyncIterator[MongoClient]:
    mongo = create_client(MONGO_URL, app_name="kit-tests")
    yield mongo
    await mongo.close()


@pytest.fixture
async def db(client: MongoClient) -> AsyncIterator[Any]:
    name = f"test_kit_{unique_suffix()}"
    database = client[name]
    await create_indexes(database)
    yield database
    await client.drop_database(name)


def _inbox_prefix(db: Any) -> str:
    return f"kittest:{db.name}:inbox:"


@pytest.fixture
async def redis(db: Any) -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    yield client
    await delete_keys(client, _inbox_prefix(db))
    await client.aclose()


def relay_for(
    db: Any,
    namespace: str,
    factory: Callable[[], AIOKafkaProducer] | None = None,
    lease_ttl: float = 15.0,
) -> MongoOutboxRelay:
    return MongoOutboxRelay(
        db,
        MongoRelayConfig(
            service="kittest",
            bootstrap=KAFKA_BOOTSTRAP,
            collections=[COLLECTION],
            topic_namespace=namespace,
            idle_poll_seconds=0.1,
            standby_poll_seconds=0.2,
            lease_ttl=timedelta(seconds=lease_ttl),
        ),
        producer_factory=factory,
    )


def consumer_for(db: Any, redis: Redis, namespace: str) -> EventConsumer[MongoEventContext]:
    return EventConsumer(
        ConsumerConfig(
            service="kittest",
            group_id=f"{namespace}mongo-probe",
            bootstrap=KAFKA_BOOTSTRAP,
            topic_namespace=namespace,
            max_attempts=3,
            base_backoff_seconds=0.05,
        ),
        mongo_handlers,
        MongoInbox.plain(db, redis, prefix=_inbox_prefix(db)),
    )


@asynccontextmanager
async def running(
    *runners: MongoOutboxRelay | EventConsumer[MongoEventContext],
) -> AsyncIterator[None]:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(r.run(stop)) for r in runners]
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait(tasks, timeout=20)


async def write_events(
    db: Any, locks: DocumentLocks, thing_id: str, events: Sequence[ProbeHappened]
) -> None:
    """What a service does: change the document and append its events in one update, locked."""
    async with locks.hold(COLLECTION, thing_id):
        current = await db[COLLECTION].find_one({"_id": thing_id})
        if current is None:
            await db[COLLECTION].insert_one(
                with_outbox(
                    {"_id": thing_id, "changes": len(events)}, *(Envelope(data=e) for e in events)
                )
            )
            return
        await db[COLLECTION].update_one(
            {"_id": thing_id},
            outbox_update(
                {"$inc": {"changes": len(events)}}, current, *(Envelope(data=e) for e in events)
            ),
        )


async def effects_by_probe(db: Any) -> dict[str, list[int]]:
    rows = await db["effects"].find({}).sort("applied", 1).to_list()
    grouped: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        grouped[row["probe_id"]].append(row["value"])
    return dict(grouped)


async def count_effects(db: Any, expected: int) -> int | None:
    count = await db["effects"].count_documents({})
    return count if count >= expected else None


async def test_concurrent_writers_under_the_document_lock_lose_no_update(db: Any) -> None:
    # 25 writers in turn, each a few round trips to FerretDB: on a loaded machine the last one
    # may wait far longer than the default 10 s, and a timeout here would prove nothing.
    locks = DocumentLocks(db, timeout=120)
    await db[COLLECTION].insert_one({"_id": "counter", "value": 0, "seen": []})

    async def increment(i: int) -> None:
        async with locks.hold(COLLECTION, "counter"):
            doc = await db[COLLECTION].find_one({"_id": "counter"})
            await asyncio.sleep(0)  # let the others run between our read and our write
            await db[COLLECTION].update_one(
                {"_id": "counter"}, {"$set": {"value": doc["value"] + 1, "seen": [*doc["seen"], i]}}
            )

    await asyncio.gather(*(increment(i) for i in range(25)))
    doc = await db[COLLECTION].find_one({"_id": "counter"})
    assert doc["value"] == 25
    assert sorted(doc["seen"]) == list(range(25))
    # The lock's history is pruned: an idle document keeps (about) one lease record.
    name = DocumentLocks.name(COLLECTION, "counter")
    assert await db["_leases"].count_documents({"name": name}) <= 2


async def test_a_lease_is_exclusive_until_it_expires_and_then_moves_on(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The leases' clock stands still unless the test moves it: however slow the calls below,
    # a lease expires exactly when the test says, not when the wall clock happens to.
    clock = [datetime.now(UTC)]
    monkeypatch.setattr(mongo_outbox, "utc_now", lambda: clock[0])
    ttl = timedelta(seconds=1)
    leases = Leases(db["_leases"], ttl=ttl)
    first = await leases.try_acquire("job")
    assert first is not None
    racers = await asyncio.gather(*(leases.try_acquire("job") for _ in range(10)))
    assert racers == [None] * 10

    clock[0] += ttl / 2
    renewed = await leases.renew(first)
    assert renewed.generation == first.generation + 1
    clock[0] += ttl * 3 / 4  # past the first expiry, not the renewed one
    assert await leases.try_acquire("job") is None

    clock[0] += ttl / 2  # past the renewed expiry
    second = await leases.try_acquire("job")
    assert second is not None
    assert second.owner != renewed.owner
    with pytest.raises(LeaseLostError):
        await leases.renew(renewed)
    assert await leases.release(renewed) is False  # a lost lease cannot free the new holder's
    assert await leases.try_acquire("job") is None
    assert await leases.release(second) is True
    # The old holder's next generation was pruned by that release: renewing still fails.
    with pytest.raises(LeaseLostError):
        await leases.renew(renewed)
    assert await leases.try_acquire("job") is not None


async def test_only_one_of_many_racers_gets_a_free_lease(db: Any) -> None:
    leases = Leases(db["_leases"], ttl=timedelta(seconds=30))
    for round_ in range(5):
        won = [
            lease
            for lease in await asyncio.gather(*(leases.try_acquire("race") for _ in range(8)))
            if lease is not None
        ]
        assert len(won) == 1, f"round {round_}: {len(won)} holders"
        assert await leases.release(won[0])


async def test_events_written_before_a_crash_are_published_later_in_order_and_applied_once(
    db: Any, redis: Redis, namespace: str
) -> None:
    locks = DocumentLocks(db)
    thing_ids = [new_id() for _ in range(4)]
    # Written while no relay runs (the process "crashed" right after the updates)...
    for thing_id in thing_ids:
        events = [ProbeHappened(probe_id=thing_id, value=i) for i in range(6)]
        await write_events(db, locks, thing_id, events[:3])
        await write_events(db, locks, thing_id, events[3:])
    assert await mongo_backlog(db, [COLLECTION]) == 24

    # ...and published by the next relay that starts.
    async with running(relay_for(db, namespace), consumer_for(db, redis, namespace)):
        await eventually(lambda: count_effects(db, 24), timeout=60)
        await eventually(lambda: _is_zero(mongo_backlog(db, [COLLECTION])), timeout=20)

    applied = await effects_by_probe(db)
    assert applied == {thing_id: list(range(6)) for thing_id in thing_ids}
    async for doc in db[COLLECTION].find({}):
        assert doc["outbox"] == []
        assert doc["outbox_pending"] is False
        assert doc["changes"] == 6


async def test_an_event_published_twice_after_a_crash_before_removal_is_applied_once(
    db: Any, redis: Redis, namespace: str
) -> None:
    locks = DocumentLocks(db)
    thing_id = new_id()
    await write_events(db, locks, thing_id, [ProbeHappened(probe_id=thing_id, value=1)])
    crashed = relay_for(db, namespace)
    heads, _ = await crashed.pending_heads()
    producer = create_producer(KAFKA_BOOTSTRAP, client_id="kittest-crashed")
    await producer.start()
    try:
        # The broker has it; no removal follows.
        outcomes = await send_each(producer, crashed.messages_of(heads), namespace=namespace)
    finally:
        await producer.stop()
    assert outcomes == [None]
    assert await mongo_backlog(db, [COLLECTION]) == 1

    async with running(relay_for(db, namespace), consumer_for(db, redis, namespace)):
        await eventually(lambda: _is_zero(mongo_backlog(db, [COLLECTION])), timeout=30)
        await eventually(lambda: count_effects(db, 1), timeout=30)
        copies = await eventually(
            lambda: _copies_on_topic(namespace + PROBE_TOPIC, heads[0][2]["id"], 2)
        )
        await asyncio.sleep(1.0)  # give a wrongly applied duplicate the time to show up
    assert copies == 2
    assert await db["effects"].count_documents({}) == 1
    # The record that turned the copy into a no-op expires: Redis' memory stays bounded.
    record = f"{_inbox_prefix(db)}{namespace}mongo-probe:{heads[0][2]['id']}"
    assert 0 < await redis.ttl(record) <= INBOX_RETENTION.total_seconds()


async def test_two_relay_replicas_with_concurrent_writers_keep_order_and_apply_once(
    db: Any, redis: Redis, namespace: str
) -> None:
    locks = DocumentLocks(db)
    thing_ids = [new_id() for _ in range(4)]

    async def writer(thing_id: str) -> None:
        for value in range(8):
            await write_events(db, locks, thing_id, [ProbeHappened(probe_id=thing_id, value=value)])

    relays = [relay_for(db, namespace, lease_ttl=2.0), relay_for(db, namespace, lease_ttl=2.0)]
    async with running(*relays, consumer_for(db, redis, namespace)):
        await asyncio.gather(*(writer(t) for t in thing_ids))
        await eventually(lambda: count_effects(db, 32), timeout=60)
        await eventually(lambda: _is_zero(mongo_backlog(db, [COLLECTION])), timeout=30)
        assert sum(r.is_leader for r in relays) <= 1
    assert await effects_by_probe(db) == {t: list(range(8)) for t in thing_ids}
    async for doc in db[COLLECTION].find({}):
        assert doc["changes"] == 8  # the relay's removals never overwrote a writer's change


async def test_the_relay_keeps_retrying_until_the_broker_is_reachable(
    db: Any, redis: Redis, namespace: str
) -> None:
    locks = DocumentLocks(db)
    thing_id = new_id()
    await write_events(db, locks, thing_id, [ProbeHappened(probe_id=thing_id, value=7)])
    attempts = 0

    def factory() -> AIOKafkaProducer:
        nonlocal attempts
        attempts += 1
        # A real producer; the first ones point at a port where no broker listens.
        bootstrap = "127.0.0.1:1" if attempts <= 2 else KAFKA_BOOTSTRAP
        return create_producer(bootstrap, client_id="kittest-flaky")

    async with running(relay_for(db, namespace, factory), consumer_for(db, redis, namespace)):
        await eventually(lambda: count_effects(db, 1), timeout=60)
    assert attempts >= 3
    assert await effects_by_probe(db) == {thing_id: [7]}


async def _is_zero(awaitable: Any) -> bool:
    return bool(await awaitable == 0)


async def _copies_on_topic(topic: str, event_id: str, expected: int) -> int | None:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=KAFKA_BOOTSTRAP,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    try:
        found = 0
        batches = await consumer.getmany(timeout_ms=1000)
        for records in batches.values():
            for record in records:
                if dict(record.headers).get("ce_id") == event_id.encode():
                    found += 1
        return found if found >= expected else None
    finally:
        await consumer.stop()


async def test_an_event_the_topic_refuses_holds_back_only_its_own_document(
    db: Any, namespace: str
) -> None:
    locks = DocumentLocks(db)
    stuck = new_id()
    await _write_refused_event(db, locks, namespace, stuck)
    others = [new_id() for _ in range(4)]
    for key in others:  # three events each: three rounds
        await write_events(db, locks, key, [ProbeHappened(probe_id=key, value=i) for i in range(3)])
    producers = 0

    def producer() -> AIOKafkaProducer:
        nonlocal producers
        producers += 1
        return create_producer(KAFKA_BOOTSTRAP, client_id="kittest-mongo-relay")

    async with running(relay_for(db, namespace, producer)):
        await eventually(lambda: _is_one(mongo_backlog(db, [COLLECTION])), timeout=30)
    # Before: the refused event failed every round and restarted the relay, the refused
    # document first each time (it is the oldest), the others one event per restart.
    assert producers == 1
    left = await db[COLLECTION].find_one({"_id": stuck})
    assert [entry["topic"] for entry in left["outbox"]] == [SMALL_TOPIC]


async def _is_one(awaitable: Any) -> bool:
    return bool(await awaitable == 1)


SMALL_TOPIC = "kittest.small"
"""A topic that takes records of at most 1,000 bytes."""


async def _write_refused_event(
    db: Any, locks: DocumentLocks, namespace: str, thing_id: str
) -> None:
    """A document whose pending event the broker refuses: too large for its topic."""
    await ensure_topics(
        KAFKA_BOOTSTRAP, [namespace + SMALL_TOPIC], config={"max.message.bytes": "1000"}
    )
    await write_events(
        db, locks, thing_id, [ProbeHappened(probe_id=thing_id, value=0, note="x" * 3000)]
    )
    document = await db[COLLECTION].find_one({"_id": thing_id})
    entries = [{**document["outbox"][0], "topic": SMALL_TOPIC}]
    await db[COLLECTION].update_one({"_id": thing_id}, {"$set": {"outbox": entries}})


async def test_documents_held_back_do_not_fill_the_batch_for_the_others(
    db: Any, namespace: str
) -> None:
    locks = DocumentLocks(db)
    for _ in range(3):  # the oldest pending documents, all refused by the broker
        await _write_refused_event(db, locks, namespace, new_id())
    later = new_id()
    await write_events(db, locks, later, [ProbeHappened(probe_id=later, value=1)])
    relay = MongoOutboxRelay(
        db,
        MongoRelayConfig(
            service="kittest",
            bootstrap=KAFKA_BOOTSTRAP,
            collections=[COLLECTION],
            topic_namespace=namespace,
            batch_size=2,  # smaller than what is held back
            idle_poll_seconds=0.1,
            standby_poll_seconds=0.2,
        ),
    )
    async with running(relay):
        # Before: the read took the two oldest documents, both held, and never got further.
        await eventually(lambda: _is(mongo_backlog(db, [COLLECTION]), 3), timeout=30)
    left = await db[COLLECTION].find_one({"_id": later})
    assert left["outbox"] == []


async def _is(awaitable: Any, expected: int) -> bool:
    return bool(await awaitable == expected)
