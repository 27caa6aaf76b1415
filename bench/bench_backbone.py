"""Event backbone throughput and latency on the real broker and database.

* relay publish rate: committed outbox rows -> acknowledged by Kafka (events/s);
* consumer-with-inbox rate: Kafka -> handler + inbox row committed -> offset committed (events/s),
  twice: with the handler's effect written once per transaction (the runtime's own cost, as a
  projection that batches its writes sees it) and with one statement per event executed by the
  handler (what a handler written the plain way costs on top);
* publish-to-handled latency p50/p99 at a fixed 500 events/s: from the moment the producing
  transaction's commit returned (the event exists for the backbone from then on) to the commit
  of the handler's transaction. The events are written by separate processes, one transaction
  each, as the producing service would, and each writer notes when every commit returned; relay
  and consumer share this process. The same figures counted from the event's creation inside
  the producing transaction (its own insert and commit included) are reported beside them.

Targets on a 2-core machine: relay >= 5,000/s, consumer >= 3,000/s, p99 < 50 ms at 500/s.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from typing import Any, ClassVar

from contracts.types import Id
from shopkit.consumer import ConsumerConfig, EventConsumer
from shopkit.db import create_engine, create_sessionmaker, service_metadata
from shopkit.handlers import EventHandlers
from shopkit.heap import freeze_startup_heap
from shopkit.inbox import EventContext, PostgresInbox, PostgresInboxTransaction
from shopkit.kafka import ensure_topics
from shopkit.messaging import messaging_tables
from shopkit.outbox import Outbox
from shopkit.relay import OutboxRelay, RelayConfig, asyncpg_dsn
from shopkit.testing import (
    KAFKA_BOOTSTRAP,
    create_database,
    drop_database,
    fetchval,
    kafka_namespace,
)
from sqlalchemy import Column, Float, Integer, Table, insert

from bench.figures import percentile
from contracts import Envelope, Event, new_id

TOPIC = "bench.events"
EVENTS = 20_000
RATE = 500
RATE_SECONDS = 10
WRITERS = 2

metadata = service_metadata()
messaging = messaging_tables(metadata)
handled = Table(
    "handled",
    metadata,
    Column("seq", Integer, primary_key=True),
    Column("latency_ms", Float, nullable=False),
)


class BenchTicked(Event):
    ce_type: ClassVar[str] = "shop.bench.bench_ticked.v1"
    topic: ClassVar[str] = TOPIC
    key_field: ClassVar[str] = "aggregate_id"

    aggregate_id: Id
    created_at: float


handlers: EventHandlers[EventContext] = EventHandlers("bench")
latencies: list[float] = []
"""Since the event's creation, in ms, for the throughput phases' progress and the latency."""
handled_at: dict[str, float] = {}
"""When the handler's transaction holding each event committed, by aggregate id."""


statement_per_event = False
"""Whether the handler writes its row itself (True) or leaves it to the transaction's commit."""


@handlers.on(BenchTicked)
async def record(envelope: Envelope[BenchTicked], ctx: EventContext) -> None:
    if statement_per_event:
        await ctx.session.execute(insert(handled).values(latency_ms=0.0))
    # Latency counts until this transaction commits (MeasuringTransaction.commit).
    ctx.session.info.setdefault("bench_events", []).append(envelope.data)


class MeasuringTransaction(PostgresInboxTransaction):
    """Writes the batch's rows in one statement unless the handler did, commits, and records
    how long each event took since its outbox commit."""

    async def commit(self) -> None:
        events: list[BenchTicked] = self.session.info.pop("bench_events", [])
        if events and not statement_per_event:
            await self.session.execute(insert(handled), [{"latency_ms": 0.0} for _ in events])
        await super().commit()
        now = time.time()
        latencies.extend((now - event.created_at) * 1000 for event in events)
        handled_at.update((str(event.aggregate_id), now) for event in events)


class MeasuringInbox(PostgresInbox):
    transaction_class = MeasuringTransaction


async def _bulk_outbox(url: str, count: int) -> None:
    engine = create_engine(url, pool_size=2)
    sessionmaker = create_sessionmaker(engine)
    try:
        for start in range(0, count, 2000):
            async with sessionmaker() as session, session.begin():
                await Outbox(session, messaging.outbox).add(
                    *(
                        Envelope(data=BenchTicked(aggregate_id=new_id(), created_at=time.time()))
                        for _ in range(min(2000, count - start))
                    )
                )
    finally:
        await engine.dispose()


def _write_at_rate(
    url: str, rate: int, seconds: int, offset: float, ready: Any, go: Any, report: Any
) -> None:
    """Runs in its own process: one outbox transaction per event, `rate` per second, starting
    `offset` of an interval late once `go` is set (after saying `ready`); puts the seconds its
    writing took and when each event's commit returned on `report`."""

    # The load must not take the cores from what it measures: the relay, the consumer, Kafka
    # and PostgreSQL run at normal priority, the stand-in producers below it.
    os.nice(10)

    async def write() -> tuple[float, dict[str, float]]:
        engine = create_engine(url, pool_size=4)
        sessionmaker = create_sessionmaker(engine)
        # A service writing events has frozen its startup heap (shopkit.app); so does this
        # stand-in, or its own collector pauses would count as delivery latency.
        freeze_startup_heap()
        interval = 1 / rate

        async def rehearse() -> None:
            async with sessionmaker() as session:
                await session.begin()
                await Outbox(session, messaging.outbox).publish(
                    BenchTicked(aggregate_id=new_id(), created_at=time.time())
                )
                await session.rollback()

        # A running service has its pool open and its statements compiled; rehearsing the
        # write (rolled back, nothing published) keeps a backend start, a SCRAM handshake and
        # SQL compilation out of the timed writing, where they would count as latency.
        await asyncio.gather(*(rehearse() for _ in range(8)))
        # Every writer starts together, once all have started up: one still importing its
        # modules would take a core from the others' first second of writing.
        ready.put(True)
        await asyncio.to_thread(go.wait)
        begin = time.perf_counter() + offset * interval

        committed: dict[str, float] = {}

        async def one() -> None:
            aggregate_id = new_id()
            async with sessionmaker() as session, session.begin():
                await Outbox(session, messaging.outbox).publish(
                    BenchTicked(aggregate_id=aggregate_id, created_at=time.time())
                )
            committed[str(aggregate_id)] = time.time()

        pending: set[asyncio.Task[None]] = set()
        try:
            for i in range(rate * seconds):
                delay = begin + i * interval - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                # Concurrent, so one slow commit does not hold back the events due after it.
                task = asyncio.create_task(one())
                pending.add(task)
                task.add_done_callback(pending.discard)
            await asyncio.gather(*pending)
            return time.perf_counter() - begin, committed
        finally:
            await engine.dispose()

    report.put(asyncio.run(write()))


async def _consume(
    url: str, namespace: str, group: str, sessionmaker: Any, stop: asyncio.Event
) -> tuple[asyncio.Task[None], float]:
    """Start a consumer group from the topic's beginning; returns its task and start time."""
    consumer = EventConsumer(
        ConsumerConfig(
            service="bench",
            group_id=f"{namespace}{group}",
            bootstrap=KAFKA_BOOTSTRAP,
            topic_namespace=namespace,
            max_batch=1000,
        ),
        handlers,
        MeasuringInbox(sessionmaker, messaging),
    )
    task = asyncio.create_task(consumer.run(stop))
    await consumer.ready.wait()
    return task, time.perf_counter()


async def _wait(check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark did not finish in time")
        await asyncio.sleep(0.02)


async def run() -> dict[str, object]:
    url = await create_database("bench_backbone")
    namespace = kafka_namespace()
    await ensure_topics(KAFKA_BOOTSTRAP, [namespace + TOPIC])
    engine = create_engine(url, pool_size=10)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    sessionmaker = create_sessionmaker(engine)
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    figures: dict[str, object] = {}
    try:
        # 1. Relay publish rate over a backlog of committed rows.
        await _bulk_outbox(url, EVENTS)
        relay = OutboxRelay(
            RelayConfig(
                service="bench",
                dsn=asyncpg_dsn(url),
                bootstrap=KAFKA_BOOTSTRAP,
                topic_namespace=namespace,
                batch_size=2000,
            )
        )
        started = time.perf_counter()
        tasks.append(asyncio.create_task(relay.run(stop)))
        await _wait(
            lambda: fetchval(url, "SELECT count(*) = 0 FROM outbox WHERE sent_at IS NULL"), 300
        )
        figures["relay_events_per_s"] = round(EVENTS / (time.perf_counter() - started))

        # 2. Consumer with inbox over the same backlog, now in Kafka: first with the handler's
        # rows written once per transaction, then (another group, from the start again) with
        # one statement per event.
        global statement_per_event
        group_stop = asyncio.Event()
        for name, per_event in (
            ("consumer_with_inbox_events_per_s", False),
            ("consumer_with_inbox_one_statement_per_event_events_per_s", True),
        ):
            statement_per_event = per_event
            before = await fetchval(url, "SELECT count(*) FROM handled")
            task, started = await _consume(url, namespace, name, sessionmaker, group_stop)
            await _wait(
                lambda before=before: fetchval(
                    url, f"SELECT count(*) >= {before + EVENTS} FROM handled"
                ),
                300,
            )
            figures[name] = round(EVENTS / (time.perf_counter() - started))
            group_stop.set()
            await asyncio.wait([task], timeout=20)
            group_stop = asyncio.Event()
        statement_per_event = False

        # 3. Latency at a fixed rate: events written by another process, one transaction each.
        task, _ = await _consume(url, namespace, "latency", sessionmaker, stop)
        tasks.append(task)
        # This process now runs what a service runs once started; freeze as a service does then.
        freeze_startup_heap()
        latencies.clear()
        # The new group starts from the end of the topic only once it has caught up: wait.
        await _wait(lambda: fetchval(url, f"SELECT count(*) >= {3 * EVENTS} FROM handled"), 300)
        latencies.clear()
        handled_at.clear()
        # Two writer processes, interleaved: one Python process writing a transaction per
        # event saturates near the target rate itself on this machine.
        spawn = multiprocessing.get_context("spawn")
        ready, go, report = spawn.Queue(), spawn.Event(), spawn.Queue()
        writers = [
            spawn.Process(
                target=_write_at_rate,
                args=(url, RATE // WRITERS, RATE_SECONDS, n / WRITERS, ready, go, report),
            )
            for n in range(WRITERS)
        ]
        for writer in writers:
            writer.start()
        for _ in writers:
            await asyncio.to_thread(ready.get, True, 120)
        await asyncio.sleep(0.5)  # the start-up's CPU burst has passed
        go.set()
        reports = [await asyncio.to_thread(report.get, True, RATE_SECONDS + 120) for _ in writers]
        for writer in writers:
            await asyncio.to_thread(writer.join, 30)
        total = RATE // WRITERS * WRITERS * RATE_SECONDS
        await _wait(lambda: _async(len(latencies) >= total), 120)
        committed = {key: at for _, times in reports for key, at in times.items()}
        from_commit = [(handled_at[key] - at) * 1000 for key, at in committed.items()]
        figures["latency_rate_events_per_s"] = round(total / max(d for d, _ in reports))
        figures["latency_p50_ms"] = percentile(from_commit, 0.5)
        figures["latency_p99_ms"] = percentile(from_commit, 0.99)
        figures["latency_from_creation_p50_ms"] = percentile(latencies, 0.5)
        figures["latency_from_creation_p99_ms"] = percentile(latencies, 0.99)
        figures["targets"] = "relay >= 5000/s, consumer >= 3000/s, p99 < 50 ms at 500/s"
        return figures
    finally:
        stop.set()
        await asyncio.wait(tasks, timeout=20)
        await engine.dispose()
        await drop_database(url)


async def _async(value: bool) -> bool:
    return value
