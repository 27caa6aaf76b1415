"""The Kafka consumer runtime shared by every service.

For each batch of one partition:
1. decode; a message that can never be handled (bad JSON, unknown `ce_type`, schema
   violation, missing header) goes straight to the dead-letter topic with the reason;
2. in one transaction: claim the events in the inbox, run their handlers, commit;
3. only then commit the Kafka offset.

A crash after step 2 and before step 3 redelivers the batch; the inbox turns it into a no-op.
Because of that, offsets need not reach the broker batch by batch: they are committed together,
at most `commit_interval_seconds` apart, at once when the consumer runs out of messages, before
a rebalance takes partitions away and on shutdown (an offset commit per batch and group, most
of them for batches of events the group does not even handle, cost the broker and the services
more than the handlers).
When a handler fails, the batch is rolled back and replayed one message at a time, each with
retries and backoff; after `max_attempts` the message is parked in `<group>.dlq` with the
error and its original headers, and the partition keeps flowing. Partitions are handled
concurrently, each in order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError, MessageSizeTooLargeError
from aiokafka.structs import ConsumerRecord as Record
from contracts.topics import dead_letter_topic

from contracts import REGISTRY, DecodeError, Envelope, Event, decode
from shopkit.handlers import EventHandlers
from shopkit.inbox import InboxStore
from shopkit.kafka import (
    DLQ_RETENTION_MS,
    REPLAY_FOR_HEADER,
    create_consumer,
    create_producer,
    ensure_topics,
)
from shopkit.loops import backoff_seconds, sleep_or_stop
from shopkit.metrics import CONSUMER_LAG, DEAD_LETTERS, HANDLER_DURATION
from shopkit.tracing import continue_trace
from shopkit.transient import is_transient

log = logging.getLogger(__name__)

C = TypeVar("C")

DLQ_ERROR_BYTES = 4000
"""Longest failure description a parked message carries (UTF-8 bytes, not characters)."""


def _cut(text: str, limit: int) -> bytes:
    """`text` as UTF-8 in at most `limit` bytes, never splitting a character."""
    return text.encode()[:limit].decode(errors="ignore").encode()


@dataclass
class ConsumerConfig:
    service: str
    group_id: str
    bootstrap: str
    topic_namespace: str = ""
    """Prefix of the topics subscribed to (isolated test runs)."""
    inbox_name: str = ""
    """Key of this consumer's rows in the inbox; defaults to the group id."""
    max_attempts: int = 5
    base_backoff_seconds: float = 0.1
    max_backoff_seconds: float = 5.0
    max_batch: int = 500
    poll_timeout_ms: int = 200
    commit_interval_seconds: float = 0.5
    """Longest time a processed offset waits before it is committed (redelivered if lost)."""
    idle_fetch_wait_ms: int = 5_000
    """How long the broker holds a fetch of a consumer with nothing to read (no linger). It
    answers at the first new message whatever this is, so it costs no latency; it sets how
    often an idle consumer asks. At aiokafka's default of 500 ms, empty fetches were 40 % of
    the CPU the whole idle stack spent (see bench/README.md)."""


class _StoppingError(Exception):
    """Shutdown requested while a message was being retried: leave its offset uncommitted."""


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runtime: EventConsumer[Any]) -> None:
        self.runtime = runtime

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # Wait for the batch in flight: its effects and offsets are committed before another
        # member takes the partitions over.
        async with self.runtime.processing:
            await self.runtime.flush_offsets()
            log.info(
                "partitions revoked",
                extra={
                    "group": self.runtime.config.group_id,
                    "partitions": [str(tp) for tp in revoked],
                },
            )

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info(
            "partitions assigned",
            extra={
                "group": self.runtime.config.group_id,
                "partitions": [str(tp) for tp in assigned],
            },
        )


class EventConsumer(Generic[C]):
    def __init__(
        self,
        config: ConsumerConfig,
        handlers: EventHandlers[C],
        store: InboxStore[C],
    ) -> None:
        self.config = config
        self.handlers = handlers
        self.store = store
        self.processing = asyncio.Lock()
        self.handled = 0
        self.dead_lettered = 0
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._stop = asyncio.Event()
        self.ready = asyncio.Event()
        self._offsets: dict[TopicPartition, int] = {}
        """Next offsets to commit, by partition: processed, not yet committed."""
        self._offsets_since = 0.0

    @property
    def dlq_topic(self) -> str:
        return dead_letter_topic(self.config.group_id)

    @property
    def inbox_name(self) -> str:
        return self.config.inbox_name or self.config.group_id

    @property
    def subscribed_topics(self) -> list[str]:
        return [self.config.topic_namespace + topic for topic in self.handlers.topics]

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set, reconnecting after broker failures."""
        self._stop = stop
        backoff = 0.5
        while not stop.is_set():
            try:
                await self._consume(stop)
                backoff = 0.5
            except (TimeoutError, KafkaError, OSError) as exc:
                log.warning(
                    "consumer interrupted, reconnecting",
                    extra={"group": self.config.group_id, "error": repr(exc)},
                )
            except _StoppingError:
                pass
            except Exception:
                log.exception(
                    "consumer failed unexpectedly, restarting",
                    extra={"group": self.config.group_id},
                )
            finally:
                self.ready.clear()
                await self._close()
            if not stop.is_set():
                await sleep_or_stop(stop, backoff)
                backoff = min(backoff * 2, 10.0)

    async def _consume(self, stop: asyncio.Event) -> None:
        await ensure_topics(
            self.config.bootstrap, [self.dlq_topic], config={"retention.ms": str(DLQ_RETENTION_MS)}
        )
        if self.config.topic_namespace:
            await ensure_topics(self.config.bootstrap, self.subscribed_topics)
        self._producer = create_producer(
            self.config.bootstrap, client_id=f"{self.config.group_id}-dlq"
        )
        await asyncio.wait_for(self._producer.start(), 30)
        linger = self.handlers.linger_seconds
        self._consumer = create_consumer(
            self.config.bootstrap,
            group_id=self.config.group_id,
            client_id=self.config.group_id,
            # Lingering: the broker answers a fetch once it holds a good batch or the linger
            # is over, instead of once per new message (a fetch round trip per message and
            # group is most of what the broker and the consumers spend).
            **(
                {"fetch_min_bytes": 1 << 20, "fetch_max_wait_ms": int(linger * 1000)}
                if linger
                else {"fetch_max_wait_ms": self.config.idle_fetch_wait_ms}
            ),
        )
        self._consumer.subscribe(self.subscribed_topics, listener=_Rebalance(self))
        await asyncio.wait_for(self._consumer.start(), 30)
        self.ready.set()
        log.info(
            "consumer started",
            extra={"group": self.config.group_id, "topics": self.subscribed_topics},
        )
        while not stop.is_set():
            batches = await self._consumer.getmany(
                timeout_ms=self.config.poll_timeout_ms, max_records=self.config.max_batch
            )
            if not batches:
                await self.flush_offsets()  # nothing more to read: commit what was processed
                continue
            async with self.processing:
                if self.handlers.across_partitions:
                    await self._all_partitions(batches)
                elif self.handlers.by_partition_number:
                    # Same key, same partition number on every topic: one aggregate's events of
                    # all topics meet in one transaction; different numbers run concurrently.
                    groups: dict[int, dict[TopicPartition, list[Record]]] = {}
                    for tp, records in batches.items():
                        groups.setdefault(tp.partition, {})[tp] = records
                    await asyncio.gather(*(self._all_partitions(g) for g in groups.values()))
                else:
                    await asyncio.gather(
                        *(self._partition(tp, records) for tp, records in batches.items())
                    )
                if time.monotonic() - self._offsets_since >= self.config.commit_interval_seconds:
                    await self.flush_offsets()

    async def _close(self) -> None:
        if self._consumer is not None:
            try:
                await self.flush_offsets()
            except Exception:
                log.debug("final offset commit failed", exc_info=True)
            try:
                await self._consumer.stop()
            except Exception:
                log.debug("consumer stop failed", exc_info=True)
            self._consumer = None
        if self._producer is not None:
            try:
                await self._producer.stop()
            except Exception:
                log.debug("dlq producer stop failed", exc_info=True)
            self._producer = None

    async def _partition(self, tp: TopicPartition, records: list[Record]) -> None:
        handled: list[tuple[Record, Envelope[Event]]] = []
        for record in records:
            if self._not_ours(record):
                continue
            try:
                envelope = decode(record.headers, record.value)
            except DecodeError as exc:
                await self._flush(tp, handled)
                handled = []
                await self._dead_letter(record, exc.reason, str(exc), attempts=0)
                await self._commit(tp, record.offset)
                await self.flush_offsets()  # a redelivery would park it twice
                continue
            if self.handlers.handler_for(envelope.type) is not None:
                handled.append((record, envelope))
        await self._flush(tp, handled)
        await self._commit(tp, records[-1].offset)
        self._record_lag(tp, records[-1].offset)

    async def _all_partitions(self, batches: dict[TopicPartition, list[Record]]) -> None:
        """One transaction for what every partition brought (each partition's messages keep
        their order; messages of different partitions concern different aggregates)."""
        handled: list[tuple[TopicPartition, Record, Envelope[Event]]] = []
        undecodable: list[tuple[TopicPartition, Record, DecodeError]] = []
        for tp, records in batches.items():
            for record in records:
                if self._not_ours(record):
                    continue
                try:
                    envelope = decode(record.headers, record.value)
                except DecodeError as error:
                    undecodable.append((tp, record, error))
                    continue
                if self.handlers.handler_for(envelope.type) is not None:
                    handled.append((tp, record, envelope))
        # Parked before the handled ones are applied: a handler's failure commits offsets up to
        # the failing message, which must not pass an undecodable one not yet parked.
        for _, bad, problem in undecodable:
            await self._dead_letter(bad, problem.reason, str(problem), attempts=0)
        await self._flush_all(handled)
        for tp, records in batches.items():
            await self._commit(tp, records[-1].offset)
            self._record_lag(tp, records[-1].offset)
        if undecodable:
            await self.flush_offsets()  # a redelivery would park them twice

    def _not_ours(self, record: Record) -> bool:
        """A well-known event type this group has no handler for, or a parked message replayed
        for another group: skipped without decoding.

        Unknown or missing types are still decoded, so they reach the dead-letter topic."""
        group = self.config.group_id
        for name, value in record.headers or ():
            # Kafka allows a header without a value (None here); such a message is decoded and
            # parked like any other malformed one.
            text = value.decode(errors="replace") if value is not None else ""
            if name == "ce_type":
                if text in REGISTRY and self.handlers.handler_for(text) is None:
                    return True
            elif name == REPLAY_FOR_HEADER and text != group:
                return True
        return False

    async def _flush(
        self, tp: TopicPartition, batch: Sequence[tuple[Record, Envelope[Event]]]
    ) -> None:
        """Apply a run of decodable messages: all in one transaction, or one by one on failure."""
        await self._flush_all([(tp, record, envelope) for record, envelope in batch])

    async def _flush_all(
        self, batch: Sequence[tuple[TopicPartition, Record, Envelope[Event]]]
    ) -> None:
        if not batch:
            return
        try:
            await self._apply([envelope for _, _, envelope in batch])
            return
        except Exception as exc:
            log.info(
                "batch failed, replaying one message at a time",
                extra={
                    "group": self.config.group_id,
                    "partitions": sorted({str(tp) for tp, _, _ in batch}),
                    "size": len(batch),
                    "error": repr(exc),
                },
            )
        for tp, record, envelope in batch:
            await self._apply_with_retries(tp, record, envelope)

    async def _apply(self, envelopes: Sequence[Envelope[Event]]) -> None:
        started = time.perf_counter()
        async with self.store.transaction() as tx:
            fresh = await tx.claim(self.inbox_name, envelopes)
            applied: set[str] = set()
            for envelope in envelopes:
                if envelope.id not in fresh or envelope.id in applied:
                    continue  # duplicate delivery: already applied (or twice in this batch)
                applied.add(envelope.id)
                handler = self.handlers.handler_for(envelope.type)
                assert handler is not None
                with continue_trace(
                    f"{self.config.group_id} process {envelope.type}",
                    envelope.traceparent,
                    envelope.tracestate,
                    attributes={
                        "messaging.system": "kafka",
                        "messaging.destination.name": envelope.topic,
                        "messaging.message.id": envelope.id,
                        "messaging.consumer.group.name": self.config.group_id,
                    },
                ):
                    await handler(envelope, tx.context(envelope))
            await tx.commit()
        elapsed = (time.perf_counter() - started) / max(len(envelopes), 1)
        for envelope in envelopes:
            HANDLER_DURATION.labels(
                self.config.service, self.config.group_id, envelope.type, "ok"
            ).observe(elapsed)
        self.handled += len(envelopes)

    async def _apply_with_retries(
        self, tp: TopicPartition, record: Record, envelope: Envelope[Event]
    ) -> None:
        """Apply one message until it succeeds or has failed `max_attempts` times.

        Failures of the infrastructure (database or broker unreachable, connection reset,
        deadlock) say nothing about the message: they are retried without limit and never
        park it. Only the handler's own failures count towards the dead-letter topic.
        """
        error: BaseException | None = None
        attempt = 0
        outage = 0
        while attempt < self.config.max_attempts:
            try:
                await self._apply([envelope])
                return
            except Exception as exc:
                error = exc
                transient = is_transient(exc)
                if transient:
                    outage += 1
                else:
                    attempt += 1
                HANDLER_DURATION.labels(
                    self.config.service, self.config.group_id, envelope.type, "error"
                ).observe(0)
                log.warning(
                    "handler failed",
                    extra={
                        "group": self.config.group_id,
                        "event_id": envelope.id,
                        "ce_type": envelope.type,
                        "attempt": attempt,
                        "transient": transient,
                        "error": repr(exc),
                    },
                )
                if attempt < self.config.max_attempts:
                    step = outage if transient else attempt
                    delay = backoff_seconds(
                        self.config.base_backoff_seconds, self.config.max_backoff_seconds, step
                    )
                    if await sleep_or_stop(self._stop, delay):
                        raise _StoppingError from exc
        await self._dead_letter(
            record, "handler_failed", repr(error), attempts=self.config.max_attempts
        )
        await self._commit(tp, record.offset)
        await self.flush_offsets()  # a redelivery would retry and park it again

    async def _dead_letter(self, record: Record, reason: str, error: str, *, attempts: int) -> None:
        """Park a message with why it failed; retried until the broker has it."""
        headers = [
            *((name, value if value is not None else b"") for name, value in record.headers or ()),
            ("dlq_reason", reason.encode()),
            ("dlq_error", _cut(error, DLQ_ERROR_BYTES)),
            ("dlq_group", self.config.group_id.encode()),
            ("dlq_original_topic", record.topic.encode()),
            ("dlq_original_partition", str(record.partition).encode()),
            ("dlq_original_offset", str(record.offset).encode()),
            ("dlq_attempts", str(attempts).encode()),
            ("dlq_failed_at", datetime.now(UTC).isoformat().encode()),
        ]
        assert self._producer is not None
        value = record.value
        # A record needs a key or a value; a keyless tombstone is parked under an empty key.
        key = record.key if record.key is not None or value is not None else b""
        backoff = 0.2
        while True:
            try:
                await (
                    await self._producer.send(self.dlq_topic, value=value, key=key, headers=headers)
                )
                break
            except MessageSizeTooLargeError:
                if value is None:
                    raise
                # The copy outgrew what the broker takes (the original was near the limit):
                # parked without its value, which stays readable at its original offset.
                log.error("parked message too large, parking it without its value")
                headers.append(("dlq_value_omitted", str(len(value)).encode()))
                value, key = None, key if key is not None else b""
            except KafkaError as exc:
                log.warning("dead-letter publish failed, retrying", extra={"error": repr(exc)})
                if await sleep_or_stop(self._stop, backoff):
                    raise _StoppingError from exc
                backoff = min(backoff * 2, 5.0)
        self.dead_lettered += 1
        DEAD_LETTERS.labels(self.config.service, self.config.group_id, reason).inc()
        log.error(
            "message dead-lettered",
            extra={
                "group": self.config.group_id,
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "reason": reason,
                "error": error[:500],
            },
        )

    async def _commit(self, tp: TopicPartition, offset: int) -> None:
        """`offset` is processed (its effects committed): commit it with the next flush."""
        if not self._offsets:
            self._offsets_since = time.monotonic()
        self._offsets[tp] = offset + 1

    async def flush_offsets(self) -> None:
        """Commit every processed offset not committed yet, in one request."""
        if not self._offsets or self._consumer is None:
            return
        offsets, self._offsets = self._offsets, {}
        owned = self._consumer.assignment()
        offsets = {tp: offset for tp, offset in offsets.items() if tp in owned}
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except CommitFailedError:
            # The partitions moved to another member during a rebalance; it will redeliver from
            # the last committed offsets and the inbox turns the repeats into no-ops.
            log.info(
                "offset commit lost to a rebalance",
                extra={"partitions": [str(tp) for tp in offsets]},
            )

    def _record_lag(self, tp: TopicPartition, last_offset: int) -> None:
        assert self._consumer is not None
        highwater = self._consumer.highwater(tp)
        if highwater is not None:
            CONSUMER_LAG.labels(
                self.config.service, self.config.group_id, tp.topic, str(tp.partition)
            ).set(max(highwater - last_offset - 1, 0))


def make_consumer(
    *,
    service: str,
    group_id: str,
    bootstrap: str,
    handlers: EventHandlers[C],
    store: InboxStore[C],
    max_attempts: int = 5,
    topic_namespace: str = "",
) -> EventConsumer[C]:
    return EventConsumer(
        ConsumerConfig(
            service=service,
            group_id=group_id,
            bootstrap=bootstrap,
            max_attempts=max_attempts,
            topic_namespace=topic_namespace,
        ),
        handlers,
        store,
    )
