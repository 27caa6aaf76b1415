"""An event the broker will not take holds back its own aggregate only, in both relays' rounds."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from shopkit import relay as relay_module
from shopkit.kafka import client_options, create_producer, ensure_topics
from shopkit.outbox import Outbox
from shopkit.relay import OutboxRelay, asyncpg_dsn
from shopkit.testing import KAFKA_BOOTSTRAP, eventually
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts import Envelope, new_id

from .probe import ProbeHappened, messaging
from .test_backbone import relay_for

SMALL_TOPIC = "kittest.small"
"""A topic that takes records of at most 1,000 bytes: far below the outbox's own limit."""
MISSING_TOPIC = "kittest.never-created"
OTHER_KEYS = [new_id() for _ in range(5)]


async def _add(
    sessionmaker: async_sessionmaker[AsyncSession],
    events: Sequence[ProbeHappened],
    *,
    topic: str | None = None,
) -> None:
    async with sessionmaker() as session, session.begin():
        await Outbox(session, messaging.outbox).add(*(Envelope(data=e) for e in events))
    if topic is not None:  # the rows just added go elsewhere
        async with sessionmaker() as session, session.begin():
            await session.execute(
                messaging.outbox.update()
                .where(messaging.outbox.c.key.in_([e.probe_id for e in events]))
                .values(topic=topic)
            )


async def _rows(url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return list(
            await conn.fetch(
                "SELECT key, topic, sent_at IS NOT NULL AS sent, attempts, last_error "
                "FROM outbox ORDER BY seq"
            )
        )
    finally:
        await conn.close()


async def _all_sent_but(url: str, keys: set[str]) -> bool:
    rows = await _rows(url)
    return all(row["sent"] != (row["key"] in keys) for row in rows)


async def _run_until(relay: OutboxRelay, condition: Any, timeout: float) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await eventually(condition, timeout=timeout)
    finally:
        stop.set()
        await asyncio.wait([task], timeout=40)


async def test_a_record_the_topic_refuses_holds_back_only_its_own_aggregate(
    database_url: str, sessionmaker: async_sessionmaker[AsyncSession], namespace: str
) -> None:
    await ensure_topics(
        KAFKA_BOOTSTRAP, [namespace + SMALL_TOPIC], config={"max.message.bytes": "1000"}
    )
    stuck = new_id()
    await _add(
        sessionmaker, [ProbeHappened(probe_id=stuck, value=0, note="x" * 3000)], topic=SMALL_TOPIC
    )
    await _add(sessionmaker, [ProbeHappened(probe_id=stuck, value=1)])  # its aggregate's next
    for _ in range(3):  # each of the other aggregates needs three rounds
        await _add(sessionmaker, [ProbeHappened(probe_id=key, value=0) for key in OTHER_KEYS])
    producers = 0

    def producer() -> AIOKafkaProducer:
        nonlocal producers
        producers += 1
        return create_producer(KAFKA_BOOTSTRAP, client_id="kittest-relay")

    relay = relay_for(database_url, namespace, producer)
    await _run_until(relay, lambda: _all_sent_but(database_url, {stuck}), timeout=30)
    # Before: the refused record failed its round and restarted the relay (a new connection
    # and producer) every round, so the other aggregates went out one event per restart.
    assert producers == 1
    rows = {(row["key"], row["topic"]): row for row in await _rows(database_url)}
    refused = rows[(stuck, SMALL_TOPIC)]
    assert not refused["sent"] and refused["attempts"] >= 1
    assert "MessageSizeTooLarge" in refused["last_error"]
    # Order within the aggregate is kept: its next event waits behind the refused one.
    assert not rows[(stuck, ProbeHappened.topic)]["sent"]
    assert rows[(stuck, ProbeHappened.topic)]["attempts"] == 0


async def test_a_topic_that_does_not_exist_holds_back_only_its_own_events(
    database_url: str, sessionmaker: async_sessionmaker[AsyncSession], namespace: str
) -> None:
    lost = [new_id(), new_id()]
    await _add(
        sessionmaker,
        [ProbeHappened(probe_id=key, value=0) for key in lost],
        topic=MISSING_TOPIC,  # with topic auto-creation off, as in the stack
    )
    others = [ProbeHappened(probe_id=new_id(), value=i) for i in range(5)]
    await _add(sessionmaker, others)

    def producer() -> AIOKafkaProducer:
        # The metadata wait of a missing topic is the request timeout: shortened, so that the
        # test sees several rounds. Before: the first such send ended the round (nothing
        # behind it was sent) and every round started with it again.
        return AIOKafkaProducer(
            bootstrap_servers=KAFKA_BOOTSTRAP,
            enable_idempotence=True,
            acks="all",
            request_timeout_ms=3_000,
            **client_options(),
        )

    relay = relay_for(database_url, namespace, producer)
    await _run_until(relay, lambda: _all_sent_but(database_url, set(lost)), timeout=15)
    rows = [row for row in await _rows(database_url) if row["key"] in lost]
    assert not any(row["sent"] for row in rows)
    assert all(row["topic"] == MISSING_TOPIC for row in rows)


async def test_a_busy_aggregate_does_not_hold_back_the_others(
    database_url: str, sessionmaker: async_sessionmaker[AsyncSession], namespace: str
) -> None:
    busy = new_id()
    # More pending events of one aggregate than a batch reads (1,000), as after an outage.
    await _add(sessionmaker, [ProbeHappened(probe_id=busy, value=i) for i in range(1500)])
    await _add(sessionmaker, [ProbeHappened(probe_id=key, value=0) for key in OTHER_KEYS])

    async def others_sent_while_busy_waits() -> bool | None:
        rows = await _rows(database_url)
        if not all(row["sent"] for row in rows if row["key"] in OTHER_KEYS):
            return None
        # Before: the batch held the busy aggregate's rows only, one published per round,
        # and the others went out after 500 rounds, once fewer than 1,000 of it were left.
        busy_left = sum(1 for row in rows if row["key"] == busy and not row["sent"])
        assert busy_left > 1000, busy_left
        return True

    await _run_until(relay_for(database_url, namespace), others_sent_while_busy_waits, timeout=30)


async def test_the_purge_deletes_in_short_statements_and_leaves_the_rest_for_later(
    database_url: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One DELETE of a large table outlasted the leader's statement timeout: the relay was
    # restarted, and the purge failed again, on every lead.
    monkeypatch.setattr(relay_module, "PURGE_BATCH", 3)
    monkeypatch.setattr(relay_module, "PURGE_BATCHES_PER_ROUND", 2)
    await _add(sessionmaker, [ProbeHappened(probe_id=new_id(), value=i) for i in range(10)])
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute("UPDATE outbox SET sent_at = now() - interval '2 days'")
        await relay_module._purge(conn, "outbox", "sent_at", timedelta(days=1))
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 4  # two batches of three
        await relay_module._purge(conn, "outbox", "sent_at", timedelta(days=1))
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 0
    finally:
        await conn.close()
