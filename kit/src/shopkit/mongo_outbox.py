"""The MongoDB variant of the outbox and inbox, for services whose state lives in documents.

Outbox: pending events live inside the document they describe (an `outbox` array pushed by the
same write that changes the document), so the change and its events are stored together or not
at all. `MongoOutboxRelay` publishes them with the idempotent producer and removes each one only
after the broker acknowledged it; it never sends an event before the previous event of the same
document was acknowledged, retries forever with backoff, and prefixes topics with
`kafka_namespace` like `shopkit.relay`.

Inbox: `MongoInbox` implements the consumer runtime's `InboxStore`. Without multi-document
transactions it cannot record an event in the same transaction as its effect, so it records the
event *after* the effect: a crash in between redelivers it, and handlers must be idempotent on
their own. The inbox still turns ordinary redeliveries into no-ops. Its records are Redis keys
(see `MongoInbox` for why).

Concurrency: a MongoDB update is atomic per document, but the MongoDB-wire server of the local
stack (FerretDB 1.x on PostgreSQL) executes an update as read, modify in memory, replace by
`_id`, with nothing between the read and the replace. Two concurrent `$inc` or `$push` on one
document lose one of them, and a filter such as `{"version": 3}` is not re-checked at replace
time. Every read-modify-write of a document that carries an outbox therefore runs under
`DocumentLocks`: leases built only from operations FerretDB does make atomic (inserting a unique
`_id`; deleting by `_id`). The relay takes the same lock to remove a published event, so it can
never overwrite a change made while it was publishing.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError
from redis.asyncio import Redis

from contracts import Envelope, Event, caused_by, topics
from shopkit.kafka import create_producer, ensure_topics
from shopkit.loops import close_quietly, sleep_or_stop
from shopkit.metrics import OUTBOX_BACKLOG, OUTBOX_FAILURES, OUTBOX_PUBLISHED
from shopkit.outbox import outbox_records
from shopkit.publishing import Failure, Holds, Outgoing, PublishError, Stall, send_each

log = logging.getLogger(__name__)

Document = dict[str, Any]
Collection = AsyncCollection[Document]
Database = AsyncDatabase[Document]

OUTBOX_FIELD = "outbox"
PENDING_FIELD = "outbox_pending"
"""True while the document holds unpublished events (a flag the relay can find cheaply)."""
PENDING_SINCE_FIELD = "outbox_since"
LEASES_COLLECTION = "_leases"


def utc_now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------------------------
# Leases and document locks
# --------------------------------------------------------------------------------------------


class LeaseLostError(RuntimeError):
    """The lease expired and someone else may hold it now: stop acting on its behalf."""


class LockTimeoutError(RuntimeError):
    """The document stayed locked by someone else for longer than the caller would wait."""


@dataclass(frozen=True, slots=True)
class Lease:
    name: str
    generation: int
    owner: str
    expires_at: datetime

    def seconds_left(self) -> float:
        return (self.expires_at - utc_now()).total_seconds()


class Leases:
    """Named, expiring leases kept as an append-only log of generations.

    A lease is held by whoever inserted the newest generation of its name with an owner and an
    expiry still in the future. Acquiring, renewing and releasing all mean inserting generation
    `n + 1` with a unique `_id`, so when several processes race for the same step exactly one
    insert succeeds; no document is ever updated in place, which keeps this correct on servers
    whose updates are not atomic. Old generations are pruned; a late insert that slips under a
    pruned generation is caught by re-reading the newest one.

    Like every lease, it protects only while its holder is not paused beyond its expiry; callers
    keep their critical sections far shorter than `ttl` and check `seconds_left()` before acting.
    """

    def __init__(self, collection: Collection, *, ttl: timedelta = timedelta(seconds=30)) -> None:
        self.collection = collection
        self.ttl = ttl

    async def create_indexes(self) -> None:
        await self.collection.create_index([("name", ASCENDING), ("generation", DESCENDING)])

    async def _newest(self, name: str) -> Document | None:
        return await self.collection.find_one({"name": name}, sort=[("generation", DESCENDING)])

    async def _insert(
        self, name: str, generation: int, owner: str | None, expires_at: datetime
    ) -> bool:
        try:
            await self.collection.insert_one(
                {
                    "_id": f"{name}#{generation:012d}",
                    "name": name,
                    "generation": generation,
                    "owner": owner,
                    "expires_at": expires_at,
                    "at": utc_now(),
                }
            )
        except DuplicateKeyError:
            return False
        return True

    async def try_acquire(
        self, name: str, *, owner: str | None = None, ttl: timedelta | None = None
    ) -> Lease | None:
        """The lease if it is free (never taken, released or expired), else None."""
        owner = owner or secrets.token_hex(8)
        newest = await self._newest(name)
        now = utc_now()
        if newest is not None and newest.get("owner") and newest["expires_at"] > now:
            return None
        generation = (int(newest["generation"]) if newest else 0) + 1
        expires_at = now + (ttl or self.ttl)
        if not await self._insert(name, generation, owner, expires_at):
            return None  # someone else took this generation first
        check = await self._newest(name)
        if check is None or int(check["generation"]) != generation:
            return None  # we read a generation that had been pruned: we are not the newest
        return Lease(name, generation, owner, expires_at)

    async def renew(self, lease: Lease, *, ttl: timedelta | None = None) -> Lease:
        """Extend a held lease; raises `LeaseLostError` if someone took it meanwhile."""
        expires_at = utc_now() + (ttl or self.ttl)
        lost = LeaseLostError(f"lease {lease.name} generation {lease.generation} was taken over")
        if not await self._insert(lease.name, lease.generation + 1, lease.owner, expires_at):
            raise lost
        newest = await self._newest(lease.name)
        if newest is None or int(newest["generation"]) != lease.generation + 1:
            raise lost  # taken and released meanwhile, and our next generation had been pruned
        renewed = Lease(lease.name, lease.generation + 1, lease.owner, expires_at)
        await self._prune(renewed)
        return renewed

    async def release(self, lease: Lease) -> bool:
        """Free the lease now; False when it had already been lost."""
        released = await self._insert(
            lease.name, lease.generation + 1, None, datetime.fromtimestamp(0, UTC)
        )
        if released:
            # An idle name keeps only its released marker: one document per locked document.
            await self._prune(
                Lease(lease.name, lease.generation + 1, lease.owner, lease.expires_at), now=True
            )
        return released

    async def _prune(self, newest: Lease, *, now: bool = False) -> None:
        if not now and newest.generation % 8:
            return  # a long-held lease prunes in batches: one round trip every eight renewals
        try:
            await self.collection.delete_many(
                {"name": newest.name, "generation": {"$lt": newest.generation}}
            )
        except PyMongoError:
            log.debug("lease pruning failed", exc_info=True)

    @asynccontextmanager
    async def hold(self, name: str, *, wait: float = 10.0) -> AsyncIterator[Lease]:
        """Wait (polling with backoff) until the lease is ours, hold it for the block, release."""
        owner = secrets.token_hex(8)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        delay = 0.005
        while True:
            lease = await self.try_acquire(name, owner=owner)
            if lease is not None:
                break
            if loop.time() >= deadline:
                raise LockTimeoutError(f"{name} stayed locked for more than {wait}s")
            # Jitter, so waiters for one document do not retry in lockstep.
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 0.1)
        try:
            yield lease
        finally:
            try:
                await self.release(lease)
            except PyMongoError:
                # The lease expires on its own; the next holder waits at most its ttl.
                log.warning("lease release failed", extra={"lease": name}, exc_info=True)


class DocumentLocks:
    """Mutual exclusion per document, for read-modify-write of documents with an outbox."""

    def __init__(
        self, db: Database, *, ttl: timedelta = timedelta(seconds=30), timeout: float = 10.0
    ) -> None:
        self.leases = Leases(db[LEASES_COLLECTION], ttl=ttl)
        self.timeout = timeout

    @staticmethod
    def name(collection: str, document_id: object) -> str:
        return f"doc/{collection}/{document_id}"

    def hold(self, collection: str, document_id: object) -> AbstractAsyncContextManager[Lease]:
        """`async with locks.hold("products", id) as lease:` exclusive access to that document."""
        return self.leases.hold(self.name(collection, document_id), wait=self.timeout)


def ensure_held(lease: Lease, *, margin: float = 2.0) -> None:
    """Refuse to write when the lease is about to expire (a stalled holder must not write)."""
    if lease.seconds_left() < margin:
        raise LeaseLostError(f"lease {lease.name} is about to expire; not writing")


# --------------------------------------------------------------------------------------------
# Writing events into documents
# --------------------------------------------------------------------------------------------


def outbox_entries(*envelopes: Envelope[Event]) -> list[Document]:
    """Pending-event entries for a document's outbox array (with the current trace context)."""
    now = utc_now()
    return [
        {"id": record.pop("event_id"), **record, "created_at": now}
        for record in outbox_records(envelopes)
    ]


def with_outbox(document: Document, *envelopes: Envelope[Event]) -> Document:
    """A new document carrying its first events (for `insert_one`)."""
    entries = outbox_entries(*envelopes)
    return {
        **document,
        OUTBOX_FIELD: entries,
        PENDING_FIELD: bool(entries),
        PENDING_SINCE_FIELD: utc_now() if entries else None,
    }


def outbox_update(update: Document, current: Document, *envelopes: Envelope[Event]) -> Document:
    """`update` (of `current`, the document as read under its lock) plus "append these events",
    so the change and its events are written by one single-document update."""
    if not envelopes:
        return update
    merged = {operator: dict(fields) for operator, fields in update.items()}
    merged.setdefault("$push", {})[OUTBOX_FIELD] = {"$each": outbox_entries(*envelopes)}
    sets = merged.setdefault("$set", {})
    sets[PENDING_FIELD] = True
    if not current.get(PENDING_FIELD):
        sets[PENDING_SINCE_FIELD] = utc_now()
    return merged


# --------------------------------------------------------------------------------------------
# The relay
# --------------------------------------------------------------------------------------------


ProducerFactory = Callable[[], AIOKafkaProducer]


@dataclass
class MongoRelayConfig:
    service: str
    bootstrap: str
    collections: Sequence[str]
    """Collections whose documents carry an outbox."""
    topic_namespace: str = ""
    """Prefix added to every topic at publish time (isolated test runs)."""
    batch_size: int = 500
    idle_poll_seconds: float = 0.25
    signalled_idle_poll_seconds: float = 5.0
    """The idle poll while something wakes the relay for other processes' writes too
    (`MongoOutboxRelay.signalled`): only a safety net then. The pending query has no index on
    every MongoDB-wire server (FerretDB scans the collection), so its rate matters."""
    standby_poll_seconds: float = 1.0
    max_backoff_seconds: float = 5.0
    lease_ttl: timedelta = timedelta(seconds=15)
    reconnect_after_seconds: float = 60.0
    """Sends failing with nothing acknowledged for this long start a new producer."""


class MongoOutboxRelay:
    """Publishes the outbox entries of documents, one document's events strictly in order.

    Several replicas may run it: one holds the relay lease and publishes, the others stand by
    and take over when the lease expires. If a stalled leader resumes after losing the lease,
    both may send a document's head event; consumers drop the duplicate by event id, and the
    order of first deliveries is kept because each sends only a document's oldest event.
    """

    def __init__(
        self,
        db: Database,
        config: MongoRelayConfig,
        producer_factory: ProducerFactory | None = None,
    ) -> None:
        self.db = db
        self.config = config
        self.locks = DocumentLocks(db)
        self.leases = Leases(db[LEASES_COLLECTION], ttl=config.lease_ttl)
        self._producer_factory = producer_factory or (
            lambda: create_producer(config.bootstrap, client_id=f"{config.service}-mongo-relay")
        )
        self._wake = asyncio.Event()
        self.signalled = False
        """Set while a signal from outside this process also wakes the relay (the catalog
        follows the purge channel every replica's writes publish on)."""
        self.is_leader = False
        self.published = 0
        self.holds = Holds(max_seconds=config.max_backoff_seconds)
        self._stall = Stall(config.reconnect_after_seconds)
        self._held_documents: dict[str, tuple[str, Any]] = {}
        """The document behind each key whose head event failed: (collection, _id)."""

    @property
    def lease_name(self) -> str:
        return f"relay/{self.config.service}"

    def wake(self) -> None:
        """Start the next round now (writers in the same process call it after a commit)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Lead or stand by until `stop` is set; every failure is retried with backoff."""
        backoff = 0.2
        while not stop.is_set():
            published = self.published
            try:
                await self._lead(stop)
                backoff = 0.2
            except (
                PyMongoError,
                KafkaError,
                OSError,
                PublishError,
                LeaseLostError,
                LockTimeoutError,
                TimeoutError,
            ) as exc:
                OUTBOX_FAILURES.labels(self.config.service).inc()
                log.warning(
                    "mongo outbox relay interrupted, retrying",
                    extra={"error": repr(exc), "retry_in": backoff},
                )
            except Exception:
                OUTBOX_FAILURES.labels(self.config.service).inc()
                log.exception("mongo outbox relay failed unexpectedly, retrying")
            finally:
                self.is_leader = False
            if self.published > published:
                backoff = 0.2  # it led and published: a new failure, not the same one again
            if await sleep_or_stop(stop, backoff):
                return
            backoff = min(backoff * 2, self.config.max_backoff_seconds)

    async def _lead(self, stop: asyncio.Event) -> None:
        owner = secrets.token_hex(8)
        lease = await self.leases.try_acquire(self.lease_name, owner=owner)
        while lease is None:
            if await sleep_or_stop(stop, self.config.standby_poll_seconds):
                return
            lease = await self.leases.try_acquire(self.lease_name, owner=owner)
        producer: AIOKafkaProducer | None = None
        try:
            self.is_leader = True
            log.info(
                "mongo outbox relay is the active publisher", extra={"service": self.config.service}
            )
            if self.config.topic_namespace:
                await ensure_topics(
                    self.config.bootstrap, [self.config.topic_namespace + t for t in topics.ALL]
                )
            producer = self._producer_factory()
            await asyncio.wait_for(producer.start(), 30)
            while not stop.is_set():
                if lease.seconds_left() < self.config.lease_ttl.total_seconds() / 2:
                    lease = await self.leases.renew(lease)
                self._wake.clear()
                more = await self.publish_round(producer)
                if not more:
                    # As in the PostgreSQL relay: a wake-up during the round ends the wait at
                    # once, so a drained round does not read again straight away.
                    await self._wait_for_work(stop, self.holds.seconds_to_next_release())
        finally:
            if producer is not None:
                await close_quietly(producer.stop())
            await close_quietly(self.leases.release(lease))

    async def _wait_for_work(self, stop: asyncio.Event, release_in: float | None) -> None:
        waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
        poll = (
            self.config.signalled_idle_poll_seconds
            if self.signalled
            else self.config.idle_poll_seconds
        )
        # Never so long that the lease, renewed between rounds, could run out meanwhile, nor
        # past the moment a held event may be tried again.
        poll = min(poll, self.config.lease_ttl.total_seconds() / 3)
        if release_in is not None:
            poll = min(poll, release_in)
        try:
            await asyncio.wait(waiters, timeout=poll, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def pending_heads(self) -> tuple[list[tuple[str, Any, Document]], bool]:
        """The oldest pending event of each document with events; and whether more wait."""
        heads: list[tuple[str, Any, Document]] = []
        more = False
        for name in self.config.collections:
            cursor = (
                self.db[name]
                .find(self._pending_filter(name), {OUTBOX_FIELD: 1, PENDING_SINCE_FIELD: 1})
                .sort([(PENDING_SINCE_FIELD, ASCENDING), ("_id", ASCENDING)])
                .limit(self.config.batch_size)
            )
            count = 0
            async for doc in cursor:
                count += 1
                entries = doc.get(OUTBOX_FIELD) or []
                if entries:
                    heads.append((name, doc["_id"], entries[0]))
                    more = more or len(entries) > 1
                else:
                    await self._settle(name, doc["_id"], set())  # flag left set: clear it
            more = more or count == self.config.batch_size
        return heads, more

    def _pending_filter(self, collection: str) -> Document:
        """Documents with pending events, less those whose head event is held back: they stay
        the oldest while held, and left in the read they would fill the batch for everyone."""
        held = set(self.holds.held_keys())
        ids = [
            document_id
            for key, (name, document_id) in self._held_documents.items()
            if name == collection and key in held
        ]
        return {PENDING_FIELD: True, "_id": {"$nin": ids}} if ids else {PENDING_FIELD: True}

    @staticmethod
    def messages_of(heads: Sequence[tuple[str, Any, Document]]) -> list[Outgoing]:
        return [
            Outgoing(
                topic=entry["topic"],
                key=str(entry["key"]),
                value=bytes(entry["payload"]),
                headers=[(name, str(value).encode()) for name, value in entry["headers"].items()],
            )
            for _, _, entry in heads
        ]

    async def publish_round(self, producer: AIOKafkaProducer) -> bool:
        """Publish each document's oldest pending event; True when more wait.

        A document whose event the broker refused (its key, or its topic) is held back with a
        backoff of its own (`shopkit.publishing`); the other documents' events go on."""
        heads, more = await self.pending_heads()
        if not heads:
            OUTBOX_BACKLOG.labels(self.config.service).set(0)
            return False
        messages = self.messages_of(heads)
        sendable = [i for i, message in enumerate(messages) if not self.holds.is_held(message)]
        outcomes = await send_each(
            producer, [messages[i] for i in sendable], namespace=self.config.topic_namespace
        )
        acked = 0
        failure: Failure | None = None
        for index, outcome in zip(sendable, outcomes, strict=True):
            message, (name, document_id, entry) = messages[index], heads[index]
            self.holds.record(message, outcome)
            if outcome is None:
                self._held_documents.pop(message.key, None)
                await self._settle(name, document_id, {entry["id"]})
                acked += 1
            elif outcome.attempted:
                self._held_documents[message.key] = (name, document_id)
                failure = failure or outcome
        self.published += acked
        OUTBOX_PUBLISHED.labels(self.config.service).inc(acked)
        if failure is not None:
            OUTBOX_FAILURES.labels(self.config.service).inc()
            log.warning(
                "outbox events not acknowledged; their documents wait, the others go on",
                extra={"service": self.config.service, "error": repr(failure.error)},
            )
        # Nothing acknowledged for too long raises: the relay reconnects with a new producer.
        self._stall.note_round(acknowledged=acked > 0, failed=failure is not None)
        # A round that published nothing waits for the first hold to pass (or a wake-up).
        return more and acked > 0

    async def _settle(self, collection: str, document_id: Any, published: set[str]) -> None:
        """Remove acknowledged events from the document, under the writers' lock."""
        async with self.locks.hold(collection, document_id) as lease:
            doc = await self.db[collection].find_one({"_id": document_id}, {OUTBOX_FIELD: 1})
            if doc is None:
                return
            remaining = [e for e in doc.get(OUTBOX_FIELD) or [] if e.get("id") not in published]
            ensure_held(lease)
            await self.db[collection].update_one(
                {"_id": document_id},
                {
                    "$set": {
                        OUTBOX_FIELD: remaining,
                        PENDING_FIELD: bool(remaining),
                        PENDING_SINCE_FIELD: (remaining[0]["created_at"] if remaining else None),
                    }
                },
            )


async def mongo_backlog(db: Database, collections: Sequence[str]) -> int:
    """Events stored in documents and not yet acknowledged by Kafka."""
    total = 0
    for name in collections:
        async for doc in db[name].find({PENDING_FIELD: True}, {OUTBOX_FIELD: 1}):
            total += len(doc.get(OUTBOX_FIELD) or [])
    return total


# --------------------------------------------------------------------------------------------
# The inbox
# --------------------------------------------------------------------------------------------


class MongoEventContext:
    """What a handler of a Mongo-backed consumer receives: the database and the envelope."""

    def __init__(self, db: Database, envelope: Envelope[Event]) -> None:
        self.db = db
        self.envelope = envelope

    def caused(self, event: Event) -> Envelope[Event]:
        """An envelope for an event this one causes (same correlation and trace), to be
        written into a document's outbox with `outbox_update`."""
        return caused_by(self.envelope, event)


C = TypeVar("C")

ContextFactory = Callable[[Database, Envelope[Event]], C]


class MongoInboxTransaction(Generic[C]):
    """A batch of events for one consumer: which ones are new, and recording them once applied.

    There is no transaction around the handlers: their effects are written as they run, and the
    batch is recorded afterwards, so a crash in between replays effects that must be idempotent.
    """

    def __init__(self, inbox: MongoInbox[C]) -> None:
        self.inbox = inbox
        self._claimed: list[str] = []

    async def claim(self, consumer: str, envelopes: Sequence[Envelope[Event]]) -> set[str]:
        if not envelopes:
            return set()
        ids = list(dict.fromkeys(e.id for e in envelopes))
        keys = [self.inbox.key(consumer, event_id) for event_id in ids]
        found = await self.inbox.redis.mget(keys)
        fresh = [
            (event_id, key)
            for event_id, key, record in zip(ids, keys, found, strict=True)
            if record is None
        ]
        self._claimed = [key for _, key in fresh]
        return {event_id for event_id, _ in fresh}

    def context(self, envelope: Envelope[Event]) -> C:
        return self.inbox.factory(self.inbox.db, envelope)

    async def commit(self) -> None:
        if not self._claimed:
            return
        # Not MULTI: each record stands alone, and one that did not land only means an
        # idempotent handler may run again.
        async with self.inbox.redis.pipeline(transaction=False) as pipe:
            for key in self._claimed:
                pipe.set(key, 1, ex=self.inbox.retention)
            await pipe.execute()
        self._claimed = []


def _default_context(db: Database, envelope: Envelope[Event]) -> MongoEventContext:
    return MongoEventContext(db, envelope)


INBOX_RETENTION = timedelta(days=1)
"""How long a record is kept. Redeliveries come minutes after the first delivery (a rebalance,
a crash before the offset commit, a relay that published again); a replay from further back
(offsets reset by an operator) meets idempotent handlers. A day bounds Redis' memory: about
120 bytes per record."""


class MongoInbox(Generic[C]):
    """`InboxStore` for the consumer runtime of a service whose state lives in MongoDB.

    The records are Redis keys (`<prefix><consumer>:<event id>`), not documents. FerretDB 1.x,
    the MongoDB-wire server of the local stack, runs every equality filter (`_id` included) as
    a JSON containment test that no index serves, so a lookup in an inbox collection read every
    record ever written: 10 ms per event at 28,000 records, and growing with every order. A key
    lookup stays O(1) on every deployment. Moving the records costs no guarantee: no
    transaction spans a document store's effect and its record anyway, so the record is written
    after the effect and handlers are idempotent; a record lost with Redis (append-only file,
    fsync every second) means one idempotent handler runs again.
    """

    def __init__(
        self,
        db: Database,
        redis: Redis,
        factory: ContextFactory[C],
        *,
        prefix: str = "inbox:",
        retention: timedelta = INBOX_RETENTION,
    ) -> None:
        self.db = db
        self.redis = redis
        self.factory = factory
        self.prefix = prefix
        self.retention = retention

    @classmethod
    def plain(
        cls, db: Database, redis: Redis, *, prefix: str = "inbox:"
    ) -> MongoInbox[MongoEventContext]:
        return MongoInbox(db, redis, _default_context, prefix=prefix)

    def key(self, consumer: str, event_id: str) -> str:
        return f"{self.prefix}{consumer}:{event_id}"

    async def recorded(self, consumer: str, event_id: str) -> bool:
        """Whether `consumer` has applied the event (and recorded it)."""
        return bool(await self.redis.exists(self.key(consumer, event_id)))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[MongoInboxTransaction[C]]:
        # Nothing to roll back: effects already written stay (handlers are idempotent) and an
        # unrecorded batch is simply redelivered.
        yield MongoInboxTransaction(self)


async def create_indexes(db: Database) -> None:
    """Indexes the outbox's leases rely on (call from a service's Mongo migration)."""
    await Leases(db[LEASES_COLLECTION]).create_indexes()
